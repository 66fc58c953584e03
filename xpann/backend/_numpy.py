"""The NumPy backend: always available, runs on the CPU."""

import math
import os

import numpy

from ._base import Backend
from ._threads import BLAS_THREADS


def _erfc_function():
    try:
        from scipy.special import erfc
    except ImportError:
        return numpy.frompyfunc(math.erfc, 1, 1)
    return erfc


class NumpyBackend(Backend):
    name = "numpy"
    # NumPy reduces a short last axis one row at a time: the max and sum of a softmax over 10
    # classes take 2-5x longer on a row-major (256, 10) array than on a column-major one.
    narrow_columns_fortran = True
    # numpy.matmul hands transposed views to the BLAS with a transpose flag, no copy.
    gemm = staticmethod(numpy.matmul)

    def __init__(self):
        super().__init__(numpy)
        self._erfc = None

    def asarray(self, value, dtype=None):
        if _is_cupy_array(value):
            value = value.get()
        return numpy.asarray(value, dtype=dtype)

    def to_numpy(self, value):
        if _is_cupy_array(value):
            return value.get()
        return numpy.asarray(value)

    def device_info(self):
        info = super().device_info()
        info["blas"] = blas_info()
        return info

    def matmul_threads(self, products):
        return BLAS_THREADS.plan(products)

    def fused_update(self, name, params):
        # numba kernels when numba is installed (imported only here, at the first optimizer build)
        from . import _fused

        return _fused.kernel(name) if _fused.usable_for(params) else None

    def fused_kernel(self, name):
        from . import _fused

        return _fused.kernel(name)

    def take_rows(self, x, rows, out=None):
        # mode="clip" skips the bounds check and the copy through a temporary that the default
        # mode makes when ``out`` is given: 2-3x faster, and the indices are valid by contract.
        return x.take(rows, axis=0, out=out, mode="clip")

    def erfc(self, x):
        if self._erfc is None:
            self._erfc = _erfc_function()
        return numpy.asarray(self._erfc(x), dtype=x.dtype)


def _is_cupy_array(value):
    return type(value).__module__.split(".")[0] == "cupy"


def blas_info():
    """The BLAS libraries NumPy runs on, with their thread counts and kernels (threadpoolctl's
    view; where other packages loaded BLAS libraries of their own, only NumPy's are listed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    own = [pool for pool in pools if _belongs_to_numpy(pool)]
    return [
        {
            "library": pool.get("internal_api"),
            "version": pool.get("version"),
            "threads": pool.get("num_threads"),
            "architecture": pool.get("architecture"),
        }
        for pool in own or pools
    ]


def _belongs_to_numpy(pool):
    """True for the BLAS shipped in NumPy's wheel (numpy.libs) or the one NumPy was built with."""
    path = os.path.realpath(pool.get("filepath") or "")
    package = os.path.dirname(os.path.realpath(numpy.__file__))
    if path.startswith(package + os.sep) or path.startswith(package + ".libs" + os.sep):
        return True
    try:
        built = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older NumPy without the dict form
        return False
    return bool(built.get("version")) and built.get("version") == pool.get("version")
