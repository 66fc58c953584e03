"""xpann: neural networks for tabular data, written once over NumPy (CPU) and CuPy (GPU)."""

from . import (
    activations,
    callbacks,
    datasets,
    diagnostics,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    preprocessing,
    regularizers,
    schedules,
    tabular,
)
from ._version import __version__
from .backend import (
    BackendUnavailableError,
    available_backends,
    get_backend,
    set_backend,
    use_backend,
)
from .model import Sequential, load_model


def export_onnx(model, path, opset=None):
    """Write ``model`` (a Sequential, a TabularModel or a fitted xpann.sklearn estimator) to the ONNX
    file ``path`` (needs the onnx extra); see ``xpann.onnx_export``."""
    from .onnx_export import export_onnx as export

    return export(model, path, opset=opset)


__all__ = [
    "BackendUnavailableError",
    "Sequential",
    "__version__",
    "activations",
    "available_backends",
    "callbacks",
    "datasets",
    "diagnostics",
    "export_onnx",
    "get_backend",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "optimizers",
    "preprocessing",
    "regularizers",
    "schedules",
    "set_backend",
    "tabular",
    "use_backend",
]
