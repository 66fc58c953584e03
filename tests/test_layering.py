"""The floors of the house (see ARCHITECTURE.md), checked by parsing the source with ``ast``:
only xpann/backend knows NumPy from CuPy, nothing in xpann imports the cli package, and each
floor imports only the floors below it."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xpann"

# Modules outside xpann/backend that may import numpy, because they use it only as the host
# format of data read from or written to files. CuPy is allowed nowhere outside the backend.
NUMPY_ALLOWED = {
    "xpann/io.py": "save/load reads and writes .npz files, whose arrays are numpy arrays on the host",
    "xpann/datasets/": "bundled CSVs and seeded synthetic data are produced on the host as numpy arrays",
    "xpann/preprocessing/": "scaling/encoding is learned from host data frames before any upload",
    "xpann/tabular/": "tables, weights of rows, decoded labels and scores live on the host as numpy arrays",
    "xpann/sklearn.py": "scikit-learn's estimators take and return host numpy arrays by contract",
    "xpann/onnx_export.py": "ONNX graphs hold the weights as initialisers made from host numpy arrays",
}

# Floors from the bottom; a module may import its own floor and the ones below.
FLOORS = [
    ("backend", ["backend"]),
    ("numerics", ["_checks", "_registry", "_version", "errors", "activations", "initializers", "losses",
                  "optimizers", "schedules", "metrics", "regularizers"]),
    ("layers", ["layers"]),
    ("plan", ["plan"]),
]
TOP = len(FLOORS)  # model, callbacks, io, datasets, diagnostics, preprocessing, ...
TABULAR = TOP + 1  # xpann.tabular: the pipeline over model and preprocessing, under the faces
FACE = TABULAR + 1  # xpann.sklearn, a face like cli/: nothing in xpann imports it


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path


def module_name(relative):
    parts = relative[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(relative, path):
    """Absolute names of every module imported anywhere in the file (top level or inside functions),
    including ``importlib.import_module("...")`` and ``__import__("...")`` with a constant name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    package = module_name(relative).split(".")
    if not relative.endswith("__init__.py"):
        package = package[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            if node.module:
                names.append((stem, node.lineno))
            if node.level:  # "from . import losses" imports xpann.losses
                names += [(f"{stem}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.append((node.args[0].value, node.lineno))
    return names


def top_level(name):
    return name.split(".")[0]


def test_the_scan_sees_the_package():
    found = dict(modules())
    assert "xpann/activations.py" in found and "xpann/backend/_cupy.py" in found
    cupy_imports = [n for n, _ in imported_modules("xpann/backend/_cupy.py", found["xpann/backend/_cupy.py"])]
    assert "cupy" in cupy_imports  # the scan does see imports inside functions
    layer_imports = [n for n, _ in imported_modules("xpann/layers/_dense.py", found["xpann/layers/_dense.py"])]
    assert "xpann.activations" in layer_imports


def test_only_the_backend_imports_numpy_or_cupy():
    offenders = []
    for relative, path in modules():
        if relative.startswith("xpann/backend/"):
            continue
        allowed = any(relative == key or (key.endswith("/") and relative.startswith(key)) for key in NUMPY_ALLOWED)
        for name, line in imported_modules(relative, path):
            if top_level(name) == "cupy" or top_level(name).startswith("cupyx"):
                offenders.append(f"{relative}:{line} imports {name} (CuPy belongs in xpann/backend)")
            elif top_level(name) == "numpy" and not allowed:
                offenders.append(f"{relative}:{line} imports {name} (go through the backend's xp, "
                                 f"or add a host-format module to NUMPY_ALLOWED with its reason)")
    assert not offenders, "\n".join(offenders)


def test_allow_list_reasons():
    for key, reason in NUMPY_ALLOWED.items():
        assert key.startswith("xpann/") and not key.startswith("xpann/backend")
        assert len(reason.split()) >= 5, f"{key} needs a one-line reason"


def test_the_library_never_imports_the_cli():
    offenders = [f"{relative}:{line} imports {name}"
                 for relative, path in modules()
                 for name, line in imported_modules(relative, path)
                 if top_level(name) in ("cli", "xpann_cli") or name.startswith("xpann.cli")]
    assert not offenders, "\n".join(offenders)


def floor_of(name):
    """The floor of an xpann module name, or None for outside modules."""
    parts = name.split(".")
    if parts[0] != "xpann":
        return None
    if len(parts) == 1:
        return TABULAR  # the package itself gathers every floor
    if parts[1] in ("tabular", "onnx_export"):
        return TABULAR
    if parts[1] == "sklearn":
        return FACE
    for index, (_, members) in enumerate(FLOORS):
        if parts[1] in members:
            return index
    return TOP


@pytest.mark.parametrize("floor", [name for name, _ in FLOORS] + ["model", "tabular", "sklearn"])
def test_each_floor_imports_only_floors_below(floor):
    level = ([name for name, _ in FLOORS] + ["model", "tabular", "sklearn"]).index(floor)
    offenders = []
    for relative, path in modules():
        name = module_name(relative)
        if floor_of(name) != level:
            continue
        for imported, line in imported_modules(relative, path):
            target = floor_of(imported)
            if target is not None and target > level:
                offenders.append(f"{relative}:{line} ({floor}) imports {imported} from a floor above")
    assert not offenders, "\n".join(offenders)


def test_every_package_is_installed():
    """pyproject.toml lists the packages by name (cli/ installs as xpann_cli): a new one must be added."""
    root = pathlib.Path(__file__).resolve().parent.parent
    listed = re.search(r"^packages = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.MULTILINE)
    assert listed, "pyproject.toml has no packages = [...] line"
    names = set(re.findall(r'"([^"]+)"', listed.group(1)))
    found = {".".join(init.parent.relative_to(root).parts) for init in (root / "xpann").rglob("__init__.py")}
    assert found | {"xpann_cli"} == names
