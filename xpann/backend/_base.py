"""The backend object: one array module, its device, and the few ops that differ."""

import contextlib

import numpy


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that cannot run here; the message says why and how to fix it."""


class Backend:
    """An array module (``xp``) plus host<->device transfer and seeded draws.

    Subclasses override only what differs between array modules.
    """

    name = "base"
    narrow_columns_fortran = False
    """True where row-wise reductions over few columns (a softmax over 10 classes) run much faster
    on column-major arrays, so that a narrow output layer keeps its logits column-major."""

    def __init__(self, xp):
        self.xp = xp

    def __repr__(self):
        return f"<xpann backend {self.name!r} on {self.device}>"

    @property
    def device(self):
        return "cpu"

    def device_info(self):
        """Plain facts about the device, for reports."""
        return {"backend": self.name, "device": self.device}

    def describe(self, threads=None):
        """The backend and its device in a few words: "numpy (CPU, openblas 0.3.31, 1 thread)", with
        ``threads`` the count a fit ran on (default: the BLAS pool's size, "up to N threads")."""
        try:
            info = self.device_info()
        except Exception:  # a report must not fail on a device query
            info = {}
        if "gpu" in info:
            return f"{self.name} ({info['gpu']}, device {info.get('device', 0)})"
        blas = (info.get("blas") or [None])[0]
        if blas:
            count = f"up to {blas.get('threads')} threads" if threads is None else \
                f"{threads} thread" + ("s" if threads != 1 else "")
            return f"{self.name} (CPU, {blas.get('library')} {blas.get('version')}, {count})"
        return f"{self.name} (CPU)"

    def is_array(self, value):
        """True for an array that already lives on this backend."""
        return isinstance(value, self.xp.ndarray)

    def asarray(self, value, dtype=None):
        """``value`` (host or device) as an array of this backend."""
        return self.xp.asarray(value, dtype=dtype)

    def to_numpy(self, value):
        """A host ``numpy.ndarray`` holding ``value``."""
        return numpy.asarray(value)

    def synchronize(self):
        """Wait until queued device work is done (a no-op on the CPU)."""

    def matmul_threads(self, products):
        """A context manager for a loop of matrix products of the (m, n, k) sizes ``products``.

        On the CPU it sets the BLAS thread count that suits them and yields a plan whose
        ``threads`` is that count and whose ``refresh()``, called between steps, follows the cores
        that other processes leave free; elsewhere (a GPU) it yields None."""
        return contextlib.nullcontext(None)

    def gemm(self, a, b, out=None):
        """The matrix product ``a @ b`` of 2-D arrays (``a`` may be 1-D), written into ``out``
        when given; transposed views are fine operands."""
        return self.xp.matmul(a, b, out=out)

    def fused_update(self, name, params):
        """A kernel that makes the optimizer ``name``'s whole update of the flat ``params`` in one
        pass, or None where this backend has none (the optimizer then runs its array code)."""
        return None

    def fused_kernel(self, name):
        """A compiled kernel for one pass of the training step, or None where this backend has none:
        bias_relu, relu and relu_backward (bitwise the array code's result; numba on the CPU, CuPy
        on a GPU) and sparse_softmax_crossentropy (GPU only; see ``_cupy_kernels``)."""
        return None

    def take_rows(self, x, rows, out=None):
        """``x[rows]`` for a device vector of valid row indices, written into ``out`` when given."""
        return self.xp.take(x, rows, axis=0, out=out)

    def add_rows(self, target, rows, values):
        """``target[rows[i]] += values[i]`` for every i, repeated rows adding up (a scatter-add)."""
        self.xp.add.at(target, rows, values)

    def device_generator(self, seed):
        """A random generator that draws on this backend's device."""
        return self.xp.random.default_rng(seed)

    def erfc(self, x):
        """The complementary error function 1 - erf(x), elementwise (exact in the far tails)."""
        raise NotImplementedError



def host_generator(seed=None):
    """The seeded host generator from which initial weights and shuffles are drawn."""
    return numpy.random.default_rng(seed)


def host_full(shape, value):
    """A float64 host array of ``shape`` filled with ``value``."""
    return numpy.full(shape, value, dtype=numpy.float64)


def host_array(value, dtype=None):
    """``value`` as a host ``numpy.ndarray`` (no copy when it already is one)."""
    return numpy.asarray(value, dtype=dtype)
