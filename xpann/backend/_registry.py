"""Which backend is in force: the registry, ``set_backend`` and ``use_backend``."""

import contextlib
import os

from ._base import BackendUnavailableError

BACKEND_NAMES = ("numpy", "cupy", "auto")
ENVIRONMENT_VARIABLE = "XPANN_BACKEND"

_instances = {}
_unavailable = {}  # name -> why, so that a missing GPU is probed once per process
_requested = os.environ.get(ENVIRONMENT_VARIABLE, "numpy").strip().lower() or "numpy"


def _check_name(name):
    if not isinstance(name, str) or name.lower() not in BACKEND_NAMES:
        raise ValueError(f"Unknown backend {name!r}; valid names are {', '.join(BACKEND_NAMES)}.")
    return name.lower()


def _instance(name):
    if name in _unavailable:
        raise BackendUnavailableError(_unavailable[name]) from None
    if name not in _instances:
        if name == "numpy":
            from ._numpy import NumpyBackend

            _instances[name] = NumpyBackend()
        else:
            from ._cupy import CupyBackend

            try:
                _instances[name] = CupyBackend()
            except BackendUnavailableError as error:
                _unavailable[name] = str(error)
                raise
    return _instances[name]


def resolve_backend(name=None):
    """The backend object for ``name`` (a name, a Backend, or None for the one in force)."""
    if name is None:
        name = _requested
        if name not in BACKEND_NAMES:
            raise ValueError(
                f"{ENVIRONMENT_VARIABLE}={name!r} is not a backend; "
                f"valid names are {', '.join(BACKEND_NAMES)}."
            )
    if not isinstance(name, str):
        if hasattr(name, "xp") and hasattr(name, "to_numpy"):
            return name
        raise ValueError(f"backend must be a name ({', '.join(BACKEND_NAMES)}), not {name!r}.")
    name = _check_name(name)
    if name == "auto":
        try:
            return _instance("cupy")
        except BackendUnavailableError:
            return _instance("numpy")
    return _instance(name)


def host_backend():
    """The NumPy backend: where host data live before the one upload to a model's device."""
    return _instance("numpy")


def get_backend():
    """The backend in force (``set_backend``, ``use_backend`` or ``XPANN_BACKEND``)."""
    return resolve_backend(None)


def set_backend(name):
    """Make ``name`` ("numpy", "cupy" or "auto") the default backend; returns it."""
    global _requested
    backend = resolve_backend(_check_name(name))
    _requested = _check_name(name)
    return backend


@contextlib.contextmanager
def use_backend(name):
    """Switch the default backend inside a ``with`` block, then restore the previous one."""
    global _requested
    previous = _requested
    backend = set_backend(name)
    try:
        yield backend
    finally:
        _requested = previous


def backend_status():
    """Each backend name mapped to None when it works, else to the reason it does not."""
    status = {}
    for name in ("numpy", "cupy"):
        try:
            _instance(name)
            status[name] = None
        except BackendUnavailableError as error:
            status[name] = str(error)
    return status


def available_backends():
    """The names of the backends that work on this machine."""
    return [name for name, reason in backend_status().items() if reason is None]
