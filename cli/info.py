"""``xpann info``: versions, BLAS, GPU and, for each backend, whether it works here and why not.

Every probe is guarded: this command must work on any machine, with or without CuPy or a GPU.
"""

import importlib.metadata
import json
import os
import platform
import sys

import click
import numpy

import xpann
from xpann.backend import backend_status, fused_kernels_status

BACKEND_CHOICES = ("numpy", "cupy", "auto")


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cuda_version(number):
    """12040 -> "12.4"."""
    return f"{number // 1000}.{number % 1000 // 10}" if isinstance(number, int) and number > 0 else None


def _blas(status):
    """The BLAS NumPy runs on: threadpoolctl's view when available, else NumPy's build record."""
    if status.get("numpy") is None:
        try:
            found = xpann.backend.resolve_backend("numpy").device_info().get("blas") or []
        except Exception:
            found = []
        if found:
            return [dict(entry, source="threadpoolctl") for entry in found]
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return [{"library": blas.get("name"), "version": blas.get("version"), "threads": None,
                 "source": "numpy build configuration (install threadpoolctl for the threads in use)"}]
    except Exception:
        return []


def _training_threads():
    """(threads, threads) the CPU backend's policy gives a fit of small and of large products
    (below and above 2**21 m*n*k), or (None, None) when the BLAS cannot be controlled."""
    try:
        backend = xpann.backend.host_backend()
        return tuple(backend.matmul_threads([size]).threads for size in ((64, 128, 128), (1024, 1024, 1024)))
    except ValueError:  # a bad XPANN_BLAS_THREADS: the training commands say so
        return None, None


def _cupy_facts(status):
    facts = {"cupy": None, "cuda_runtime": None, "cuda_driver": None, "gpu": None}
    if status.get("cupy") is None:
        try:
            info = xpann.backend.resolve_backend("cupy").device_info()
            facts.update(cupy=info.get("cupy"), cuda_runtime=_cuda_version(info.get("cuda_runtime")),
                         cuda_driver=_cuda_version(info.get("cuda_driver")), gpu=info.get("gpu"),
                         gpu_memory_gib=info.get("memory_gib"))
        except Exception:
            pass
        return facts
    if "cupy" in sys.modules:  # the backend probe imported it without finding a GPU
        cupy = sys.modules["cupy"]
        facts["cupy"] = getattr(cupy, "__version__", None)
        try:
            facts["cuda_runtime"] = _cuda_version(cupy.cuda.runtime.runtimeGetVersion())
        except Exception:
            pass
    return facts


def collect():
    """Everything ``xpann info`` reports, as a JSON-ready dict."""
    status = backend_status()
    facts = {
        "xpann": xpann.__version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})",
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "pandas": _version("pandas"),
        "click": _version("click"),
        "matplotlib": _version("matplotlib"),
        "numba": _version("numba"),
        "fused_kernels": fused_kernels_status() or "on",
        "blas": _blas(status),
        "training_threads": _training_threads(),
    }
    facts.update(_cupy_facts(status))
    facts["backends"] = {name: {"available": reason is None, "reason": reason} for name, reason in status.items()}
    requested = (os.environ.get("XPANN_BACKEND") or "").strip()
    facts["default_backend"] = requested.lower() or "numpy"
    facts["default_backend_error"] = None
    if requested and requested.lower() not in BACKEND_CHOICES:
        facts["default_backend_error"] = (f"XPANN_BACKEND={requested!r} is not a backend; valid names are "
                                          f"{', '.join(BACKEND_CHOICES)}. Commands that train or load a model "
                                          "fail until it is fixed or unset.")
    return facts


PLOT_HINT = " (xpann train --plot needs it: pip install 'xpann[plot]')"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
def info(as_json):
    """Versions, BLAS and GPU, and which backends work here.

    Shows xpann, Python, NumPy, CuPy and CUDA versions, the BLAS NumPy uses, and for each
    backend that does not work, why."""
    facts = collect()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    missing = "not installed"
    lines = [
        f"xpann       {facts['xpann']}",
        f"Python      {facts['python']}",
        f"Platform    {facts['platform']}",
        f"NumPy       {facts['numpy']}",
        f"pandas      {facts['pandas'] or missing}",
        f"matplotlib  {facts['matplotlib'] or missing + PLOT_HINT}",
        f"numba       {facts['numba'] or missing}",
        f"Fused CPU kernels: {facts['fused_kernels']}",
    ]
    for entry in facts["blas"] or [{"library": "unknown", "version": None, "threads": None}]:
        threads = f", {entry['threads']} threads" if entry.get("threads") else ""
        source = f" [from the {entry['source']}]" if entry.get("source", "threadpoolctl") != "threadpoolctl" else ""
        lines.append(f"BLAS        {entry.get('library')} {entry.get('version') or ''}".rstrip() + threads + source)
    small, large = facts["training_threads"]
    if small is not None:
        policy = os.environ.get("XPANN_BLAS_THREADS", "auto")
        lines.append(f"BLAS in fit {small} thread(s) for small products, {large} for large ones (m*n*k >= 2**21; "
                     f"XPANN_BLAS_THREADS={policy})")
    lines.append(f"CuPy        {facts['cupy'] or missing}")
    cuda = facts["cuda_runtime"]
    if cuda:
        driver = f", driver {facts['cuda_driver']}" if facts["cuda_driver"] else ""
        lines.append(f"CUDA        runtime {cuda}{driver}")
    else:
        lines.append("CUDA        not available")
    if facts["gpu"]:
        lines.append(f"GPU         {facts['gpu']} ({facts.get('gpu_memory_gib')} GiB)")
    lines.append("Backends:")
    for name, state in facts["backends"].items():
        lines.append(f"  {name:<6} " + ("available" if state["available"] else f"unavailable: {state['reason']}"))
    if facts["default_backend_error"]:
        lines.append(f"Default backend: INVALID: {facts['default_backend_error']}")
    else:
        default = facts["default_backend"]
        state = facts["backends"].get(default)
        warning = " - unavailable here (see above): commands that train or load a model will fail" if (
            state and not state["available"]) else ""
        lines.append(f"Default backend: {default}"
                     + (" (from XPANN_BACKEND)" if os.environ.get("XPANN_BACKEND") else " (set XPANN_BACKEND to change)")
                     + warning)
    click.echo("\n".join(lines))
