"""Shared fixtures: one test body runs on every backend; the CuPy column skips with its reason."""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one BLAS thread per test worker

import numpy  # noqa: E402
import pytest  # noqa: E402

import xpann  # noqa: E402
from xpann.backend import backend_status  # noqa: E402

BACKEND_NAMES = ("numpy", "cupy")
TOLERANCES = {
    "float32": {"rtol": 2e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-10, "atol": 1e-12},
}


def require_backend(name):
    """The backend object for ``name``, or a visible skip saying why it cannot run here."""
    reason = backend_status()[name]
    if reason is not None:
        pytest.skip(f"{name} backend unavailable: {reason}")
    return xpann.backend.resolve_backend(name)


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    """Each backend in turn, made the default for the test's duration."""
    require_backend(request.param)
    with xpann.use_backend(request.param) as chosen:
        yield chosen


@pytest.fixture
def cupy_backend():
    return require_backend("cupy")


def assert_backends_agree(run, dtype="float32", **tolerance):
    """Run ``run(backend)`` on NumPy and on CuPy and compare what each returns (arrays or lists
    of arrays, brought to the host): same dtype, shape and values within the dtype's tolerance."""
    expected = _as_host_list(run(require_backend("numpy")), require_backend("numpy"))
    cupy = require_backend("cupy")
    actual = _as_host_list(run(cupy), cupy)
    limits = {**TOLERANCES[dtype], **tolerance}
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        numpy.testing.assert_allclose(got, want, **limits)


def _as_host_list(result, backend):
    items = result if isinstance(result, (list, tuple)) else [result]
    return [backend.to_numpy(item) for item in items]


def finite_differences(f, values, step=1e-6):
    """d f / d values by central differences (a float64 host or device array changed in place and
    restored)."""
    grad = numpy.zeros(values.shape)
    for index in numpy.ndindex(values.shape):
        old = float(values[index])
        values[index] = old + step
        up = f()
        values[index] = old - step
        down = f()
        values[index] = old
        grad[index] = (up - down) / (2 * step)
    return grad


def assert_weights_equal(a, b, rtol=0.0, atol=0.0):
    """Two lists of weight arrays (host or device) are the same: as many arrays, each with the same
    shape and dtype, and values equal bit for bit, or within ``rtol``/``atol`` where given."""
    a, b = list(a), list(b)
    assert len(a) == len(b), f"{len(a)} weight arrays against {len(b)}"
    for index, (left, right) in enumerate(zip(a, b)):
        left, right = _host(left), _host(right)
        assert left.shape == right.shape, f"weight {index}: shape {left.shape} against {right.shape}"
        assert left.dtype == right.dtype, f"weight {index}: dtype {left.dtype} against {right.dtype}"
        if rtol == 0 and atol == 0:
            numpy.testing.assert_array_equal(left, right, err_msg=f"weight {index}")
        else:
            numpy.testing.assert_allclose(left, right, rtol=rtol, atol=atol, err_msg=f"weight {index}")


def _host(array):
    get = getattr(array, "get", None)  # a CuPy array
    return numpy.asarray(get() if callable(get) and not isinstance(array, numpy.ndarray) else array)
