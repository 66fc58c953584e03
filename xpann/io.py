"""Saving and loading models: one .npz with the weights and a JSON config, written atomically.

No pickle is written or read: arrays are plain numeric arrays and the config is JSON text.
The file also keeps the optimizer's state and the model's random-generator state, so a loaded
model continues training as the saved one would have.
"""

import contextlib
import json
import os
import stat
import tempfile
import zipfile

import numpy

from . import layers, losses, optimizers
from ._version import __version__

FORMAT = "xpann.model"
FORMAT_VERSION = 1


def _json_text(config):
    try:
        return json.dumps(config, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The model cannot be saved: model.metadata must hold only JSON values "
            f"(dict, list, str, int, float, bool, None) ({error})."
        ) from None


def _host_generator_state(generator):
    """The JSON-ready state of a host numpy Generator, or None for any other generator."""
    if isinstance(generator, numpy.random.Generator):
        return generator.bit_generator.state
    return None


def _set_generator_state(generator, state):
    if isinstance(generator, numpy.random.Generator) and isinstance(state, dict):
        if state.get("bit_generator") == type(generator.bit_generator).__name__:
            generator.bit_generator.state = state


def _dropout_generator(model):
    """The device generator the model's dropout layers draw from, if any."""
    for layer in model.layers:
        generator = getattr(layer, "_generator", None)
        if generator is not None:
            return generator
    return None


def _file_mode(path):
    """The mode a new file at ``path`` gets: the existing file's, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, text=False):
    """A stream to a temporary file beside ``path`` that replaces ``path`` only once it is whole and
    on disk; on any error the old file stays and the temporary one is removed."""
    path = os.fspath(path)
    mode = _file_mode(path)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".xpann-",
                                         suffix=".tmp")
    try:
        options = {"encoding": "utf-8", "newline": ""} if text else {}
        with os.fdopen(handle, "w" if text else "wb", **options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save_model(model, path):
    """Write ``model`` to ``path``: a temporary file in the same folder, then an atomic rename."""
    if not model.built:
        raise ValueError("The model has no weights yet; build or fit it before saving.")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give a file name such as model.npz.")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "xpann_version": __version__,
        "model": model.get_config(),
        "metadata": model.metadata,
        "random_state": {
            "host": _host_generator_state(getattr(model, "_rng", None)),
            "dropout": _host_generator_state(_dropout_generator(model)),
        },
        "compile": None,
    }
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    if model.loss is not None:
        scalars, slots = model.optimizer.get_state() if model.optimizer.built else ({}, {})
        config["compile"] = {
            "loss": losses.serialize(model.loss),
            "optimizer": optimizers.serialize(model.optimizer),
            "optimizer_state": scalars,
            "metrics": list(model.metric_names),
        }
        arrays.update({f"optimizer_{name}": model.backend.to_numpy(value) for name, value in slots.items()})
    arrays["config"] = numpy.array(_json_text(config))
    with atomic_write(path) as stream:
        numpy.savez(stream, **arrays)


def read_model_file(path):
    """The config dict and the arrays of an xpann model file; ValueError if it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an xpann model file (not an .npz archive).")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not an xpann model file ({type(error).__name__}: {error}).") from None
    text = arrays.pop("config", None)
    if text is None:
        raise ValueError(f"{path} is not an xpann model file (an .npz archive without an xpann model config).")
    try:
        if text.dtype.kind != "U" or text.ndim != 0:
            raise ValueError("its config is not a text entry")
        config = json.loads(str(text))
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not an xpann model file (unreadable config: {error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path} is not an xpann model file (no xpann model config inside).")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path} has an invalid model format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in model format {version!r} by xpann {config.get('xpann_version')}; "
            f"this xpann ({__version__}) reads format {FORMAT_VERSION} and older. Upgrade xpann."
        )
    return config, arrays


def load_model(path, backend=None):
    """The model saved at ``path``, on ``backend`` (default: the one in force)."""
    from .model import Sequential

    config, arrays = read_model_file(path)
    try:
        spec = config["model"]
        model = Sequential(
            [layers.deserialize(layer) for layer in spec["layers"]],
            input_dim=spec["input_dim"], seed=spec.get("seed"), dtype=spec.get("dtype", "float32"),
            backend=backend, name=spec.get("name"),
        )
        weights = [arrays[f"weight_{i}"] for i in range(len(model.parameters.entries))]
        model.set_weights(weights)
        compiled = config.get("compile")
        if compiled:
            model.compile(optimizer=optimizers.deserialize(compiled["optimizer"]),
                          loss=losses.deserialize(compiled["loss"]), metrics=compiled.get("metrics"))
            slots = {key[len("optimizer_"):]: value for key, value in arrays.items() if key.startswith("optimizer_")}
            if compiled.get("optimizer_state") or slots:
                model.optimizer.set_state(compiled.get("optimizer_state", {}), slots)
        random_state = config.get("random_state") or {}
        _set_generator_state(getattr(model, "_rng", None), random_state.get("host"))
        _set_generator_state(_dropout_generator(model), random_state.get("dropout"))
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path} holds an incomplete or damaged xpann model ({type(error).__name__}: {error}).") from None
    metadata = config.get("metadata")
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model
