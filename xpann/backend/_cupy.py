"""The CuPy backend: imported only when asked for, usable only where a GPU works."""

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
        # cupy.matmul copies every operand that is not C-contiguous (the x.T and kernel.T of
        # backward) before calling cuBLAS; cupy.dot passes C- or F-contiguous operands with a
        # transpose flag instead. dot needs a C-contiguous out.
        if b.ndim == 2 and a.ndim <= 2 and (out is None or out.flags.c_contiguous):
            return self.xp.dot(a, b, out=out)
        return self.xp.matmul(a, b, out=out)

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

    def add_rows(self, target, rows, values):
        import cupyx

        cupyx.scatter_add(target, rows, values)

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
