"""Optional fused CPU kernels (numba) for the optimizers' updates (one loop over the flat buffer
per step instead of one NumPy pass per operation) and for a ReLU Dense layer's bias + ReLU forward
and ReLU backward (one pass instead of two).

Each kernel does, element by element, exactly the IEEE operations of the generic array code in
``xpann/optimizers.py``, in the same order and in the parameters' dtype (the scalars arrive
already rounded to it, as NumPy rounds a Python float operand), with no fast-math: the results are
bitwise those of the generic path, which stays the reference and the default without numba.

numba is imported only when a kernel is first asked for; the kernels are compiled at their first
call for each dtype and cached on disk (``cache=True``). ``XPANN_FUSED=0`` in the environment turns
the fused path off, on the CPU and on a GPU (``_cupy_kernels``) alike.
"""

import os

import numpy

_KERNELS = None
_UNAVAILABLE = None  # why the kernels cannot be used here, once known


def enabled():
    """False when ``XPANN_FUSED`` is set to 0/false/off/no."""
    return os.environ.get("XPANN_FUSED", "1").strip().lower() not in ("0", "false", "off", "no")


def unavailable_reason():
    """None when the fused kernels can run, else why not (numba missing, or turned off)."""
    if not enabled():
        return "XPANN_FUSED turns the fused kernels off"
    _load()
    return _UNAVAILABLE


def kernel(name):
    """The fused kernel ``name`` (an optimizer's kernel name, or bias_relu, relu, relu_backward), or
    None (numba missing, turned off, or no such kernel)."""
    if not enabled():
        return None
    kernels = _load()
    return None if kernels is None else kernels.get(name)


def usable_for(params):
    """True when the flat ``params`` suit the kernels: a contiguous float32/float64 vector."""
    return (
        isinstance(params, numpy.ndarray)
        and params.ndim == 1
        and params.dtype in (numpy.float32, numpy.float64)
        and params.flags.c_contiguous
    )


def _load():
    global _KERNELS, _UNAVAILABLE
    if _KERNELS is None and _UNAVAILABLE is None:
        try:
            from ._fused_kernels import KERNELS
        except ImportError as error:
            _UNAVAILABLE = ("off: numba is not installed (pip install 'xpann[jit]')" if error.name == "numba"
                            else f"off: numba fails to import ({error})")
            return None
        _KERNELS = KERNELS
    return _KERNELS
