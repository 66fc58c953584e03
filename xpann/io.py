"""Saving and loading models: one .npz with the weights and a JSON config, written atomically.

No pickle is written or read: arrays are plain numeric arrays and the config is JSON text.
"""

import json
import os
import tempfile
import zipfile

import numpy

from . import layers, losses, optimizers
from ._version import __version__

FORMAT = "xpann.model"
FORMAT_VERSION = 1


def save_model(model, path):
    """Write ``model`` to ``path``: a temporary file in the same folder, then an atomic rename."""
    if not model.built:
        raise ValueError("The model has no weights yet; build or fit it before saving.")
    path = os.fspath(path)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "xpann_version": __version__,
        "model": model.get_config(),
        "metadata": model.metadata,
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
    arrays["config"] = numpy.array(json.dumps(config))
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".xpann-", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            numpy.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_model_file(path):
    """The config dict and the arrays of an xpann model file; ValueError if it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}.")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        config = json.loads(str(arrays.pop("config")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an xpann model file ({type(error).__name__}: {error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path} is not an xpann model file (no xpann model config inside).")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in model format {version!r} by xpann {config.get('xpann_version')}; "
            f"this xpann ({__version__}) reads format {FORMAT_VERSION} and older. Upgrade xpann."
        )
    return config, arrays


def load_model(path, backend=None):
    """The model saved at ``path``, on ``backend`` (default: the one in force)."""
    from .model import Sequential

    config, arrays = read_model_file(path)
    spec = config["model"]
    try:
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
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} holds an incomplete or damaged xpann model ({type(error).__name__}: {error}).") from None
    model.metadata = config.get("metadata") or {}
    return model
