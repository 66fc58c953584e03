"""The CuPy backend: imported only when asked for, usable only where a GPU works."""

import numpy

from ._base import Backend, BackendUnavailableError

INSTALL_HINT = (
    "Install the GPU extra that matches your CUDA driver: "
    "pip install 'xpann[cuda12]' (CUDA 12) or pip install 'xpann[cuda13]' (CUDA 13)."
)


def probe_cupy():
    """Import CuPy and touch the GPU; raise BackendUnavailableError saying why not."""
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(
            f"The cupy backend needs CuPy, which is not installed ({error}). {INSTALL_HINT}"
        ) from None
    except Exception as error:  # a broken install fails in its own ways
        raise BackendUnavailableError(
            f"CuPy is installed but fails to import ({type(error).__name__}: {error}); reinstall it. "
            f"{INSTALL_HINT}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("no CUDA device was found")
        cupy.zeros(1, dtype=cupy.float32).sum()
        cupy.cuda.Device().synchronize()
    except Exception as error:  # CUDA raises several unrelated types here
        raise BackendUnavailableError(
            f"CuPy {cupy.__version__} is installed but no usable GPU was found "
            f"({type(error).__name__}: {error}). Check that nvidia-smi lists a GPU and that its "
            f"driver supports the CUDA version of the installed CuPy; {INSTALL_HINT[0].lower()}{INSTALL_HINT[1:]} "
            "Use backend='numpy' to run on the CPU."
        ) from None
    return cupy


class CupyBackend(Backend):
    name = "cupy"
    # The column of ones that folds a bias into the next product makes odd widths (129, 513), and
    # cuBLAS runs such unaligned operands on slower kernels: the bias gets its own pass instead.
    fold_bias_into_products = False
    _cublas = None

    def __init__(self):
        cupy = probe_cupy()
        super().__init__(cupy)
        self._erfc = None

    @property
    def device(self):
        device = self.xp.cuda.Device()
        return f"cuda:{device.id}"

    def device_info(self):
        cupy = self.xp
        runtime = cupy.cuda.runtime
        device = cupy.cuda.Device()
        properties = runtime.getDeviceProperties(device.id)
        name = properties["name"]
        return {
            "backend": self.name,
            "device": self.device,
            "gpu": name.decode() if isinstance(name, bytes) else str(name),
            "memory_gib": round(properties["totalGlobalMem"] / 2**30, 1),
            "cuda_runtime": runtime.runtimeGetVersion(),
            "cuda_driver": runtime.driverGetVersion(),
            "cupy": cupy.__version__,
        }

    def asarray(self, value, dtype=None):
        return self.xp.asarray(value, dtype=dtype)

    def to_numpy(self, value):
        return self.xp.asnumpy(value)

    def gemm(self, a, b, out=None):
        # Into a given row-major ``out``, straight through cuBLAS: cupy.dot's checks and dispatch
        # cost about 20 us of host time a call, more than a small layer's product on the GPU.
        # Otherwise cupy.dot, which hands C- or F-contiguous operands (the x.T and kernel.T of
        # backward) to cuBLAS with a transpose flag (cupy.matmul copies them first).
        if out is not None:
            call = _gemm_call(a, b, out)
            if call is not None:
                self._gemm_direct(a, b, out, *call)
                return out
        if b.ndim == 2 and a.ndim <= 2 and (out is None or out.flags.c_contiguous):
            return self.xp.dot(a, b, out=out)
        return self.xp.matmul(a, b, out=out)

    def _gemm_direct(self, a, b, out, op_b, op_a, n, m, k, ldb, lda):
        cublas = self._cublas
        if cublas is None:
            from cupy_backends.cuda.libs import cublas

            self._cublas = cublas
            self._gemm_functions = {"f": cublas.sgemm, "d": cublas.dgemm}
            self._gemm_scalars = {code: (numpy.ones(1, code), numpy.zeros(1, code)) for code in "fd"}
        one, zero = self._gemm_scalars[out.dtype.char]
        handle = self.xp.cuda.device.get_cublas_handle()
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
        self._gemm_functions[out.dtype.char](handle, op_b, op_a, n, m, k, one.ctypes.data, b.data.ptr, ldb,
                                             a.data.ptr, lda, zero.ctypes.data, out.data.ptr, n)

    def synchronize(self):
        self.xp.cuda.Device().synchronize()

    def fused_update(self, name, params):
        kernels = _kernels()
        if kernels is None or params.ndim != 1 or params.dtype.kind != "f" or not params.flags.c_contiguous:
            return None
        return kernels.OPTIMIZERS.get(name)

    def fused_kernel(self, name):
        kernels = _kernels()
        return None if kernels is None else kernels.LAYER_KERNELS.get(name)

    def erfc(self, x):
        if self._erfc is None:
            from cupyx.scipy.special import erfc

            self._erfc = erfc
        return self._erfc(x)


def _kernels():
    """The module of CuPy kernels (``_cupy_kernels``), or None when ``XPANN_FUSED`` turns them off."""
    from . import _fused

    if not _fused.enabled():
        return None
    from . import _cupy_kernels

    return _cupy_kernels


OP_N, OP_T = 0, 1  # cuBLAS's CUBLAS_OP_N and CUBLAS_OP_T


def _gemm_call(a, b, out):
    """The arguments (op_b, op_a, n, m, k, ldb, lda) of one column-major cuBLAS gemm that writes
    ``a @ b`` into the row-major ``out``, or None where the operands do not allow it.

    Row-major C = A @ B is, read column-major, C^T = B^T A^T (ldc = n). A C-contiguous operand read
    column-major is its own transpose (op N, ld = its columns); an F-contiguous one (a transposed
    view) is itself (op T, ld = its rows). ``a`` may be a vector (one row)."""
    dtype = out.dtype
    if dtype.char not in "fd" or a.dtype != dtype or b.dtype != dtype or b.ndim != 2 or not out.flags.c_contiguous:
        return None
    if a.ndim == 1:
        m, k = 1, a.shape[0]
        shape = (b.shape[1],)
    elif a.ndim == 2:
        m, k = a.shape
        shape = (m, b.shape[1])
    else:
        return None
    n = b.shape[1]
    if b.shape[0] != k or out.shape != shape or not (m and n and k):
        return None
    b_layout, a_layout = _column_major(b), _column_major(a)
    if b_layout is None or a_layout is None:
        return None
    return (b_layout[0], a_layout[0], n, m, k, b_layout[1], a_layout[1])


def _column_major(x):
    """(op, ld) presenting the row-major matrix ``x`` to cuBLAS as x^T, or None (not contiguous)."""
    if x.flags.c_contiguous:
        return OP_N, x.shape[-1]
    if x.ndim == 2 and x.flags.f_contiguous:
        return OP_T, x.shape[0]
    return None
