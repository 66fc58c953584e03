"""Backends: the only package that knows NumPy from CuPy."""

from ._base import Backend, BackendUnavailableError, host_array, host_full, host_generator
from ._fused import unavailable_reason as fused_kernels_status
from ._registry import (
    available_backends,
    backend_status,
    get_backend,
    host_backend,
    resolve_backend,
    set_backend,
    use_backend,
)

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "backend_status",
    "fused_kernels_status",
    "get_backend",
    "host_array",
    "host_backend",
    "host_full",
    "host_generator",
    "resolve_backend",
    "set_backend",
    "use_backend",
]
