"""Backend selection: names, switching and restoring, the CuPy guard, XPANN_BACKEND, lazy CuPy import."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy
import pytest

import xpann
from xpann.backend import backend_status

CUPY_WORKS = backend_status()["cupy"] is None


def run_python(code, env_extra=None, pythonpath=None):
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "XPANN_BACKEND"}
    env.update(env_extra or {})
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_available_backends():
    names = xpann.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= {"numpy", "cupy"}
    assert ("cupy" in names) == CUPY_WORKS


@pytest.fixture
def on_numpy():
    """Start from numpy whatever XPANN_BACKEND says, and put the caller's choice back after."""
    with xpann.use_backend("numpy"):
        yield


def test_get_set_and_use_backend_restore(on_numpy):
    backend = xpann.get_backend()
    assert backend.name == "numpy" and backend.xp is numpy and backend.device == "cpu"
    assert backend.device_info()["backend"] == "numpy"
    with xpann.use_backend("auto") as inside:
        assert inside is xpann.get_backend()
        with xpann.use_backend("numpy"):
            assert xpann.get_backend() is backend
        assert xpann.get_backend() is inside
    assert xpann.get_backend() is backend
    with pytest.raises(KeyError):
        with xpann.use_backend("auto"):
            raise KeyError("boom")
    assert xpann.get_backend() is backend
    assert xpann.set_backend("NumPy") is backend  # names are case-insensitive


@pytest.mark.parametrize("bad", ["tpu", "", None, 3])
def test_unknown_name_lists_the_valid_ones(on_numpy, bad):
    with pytest.raises(ValueError) as error:
        xpann.set_backend(bad)
    assert "numpy" in str(error.value) and "cupy" in str(error.value) and "auto" in str(error.value)
    with pytest.raises(ValueError):
        with xpann.use_backend(bad):
            pass
    with pytest.raises(ValueError, match="valid names"):
        xpann.Sequential([xpann.layers.Dense(1)], backend="gpu")
    assert xpann.get_backend().name == "numpy"


@pytest.mark.skipif(CUPY_WORKS, reason="CuPy works here, so there is no failure to check")
def test_cupy_without_a_gpu_raises_a_clear_error(on_numpy):
    with pytest.raises(xpann.BackendUnavailableError) as error:
        xpann.set_backend("cupy")
    assert isinstance(error.value, RuntimeError)
    message = str(error.value)
    assert "cupy" in message.lower() and "xpann[cuda" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__  # no raw ImportError chain
    assert xpann.get_backend().name == "numpy"  # a failed switch changes nothing
    with pytest.raises(xpann.BackendUnavailableError):
        with xpann.use_backend("cupy"):
            pass
    with pytest.raises(xpann.BackendUnavailableError):
        xpann.Sequential([xpann.layers.Dense(1)], input_dim=2, backend="cupy")


def test_auto_falls_back_quietly(on_numpy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xpann.use_backend("auto") as backend:
            assert backend.name == ("cupy" if CUPY_WORKS else "numpy")
    assert xpann.get_backend().name == "numpy"


def test_import_does_not_import_cupy():
    result = run_python("""
        import sys
        import xpann
        xpann.Sequential([xpann.layers.Dense(2, activation="softmax")], input_dim=3, seed=0).predict([[1, 2, 3]])
        print("cupy" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_xpann_backend_cupy_fails_at_first_need_not_at_import():
    result = run_python("""
        import json, xpann
        out = {"imported": True}
        try:
            xpann.get_backend()
            out["error"] = None
        except xpann.BackendUnavailableError as error:
            out["error"] = str(error)
            out["runtime_error"] = isinstance(error, RuntimeError)
        try:
            xpann.Sequential([xpann.layers.Dense(1)], input_dim=2)
            out["model"] = "built"
        except xpann.BackendUnavailableError:
            out["model"] = "refused"
        out["pinned_numpy"] = xpann.Sequential([xpann.layers.Dense(1)], input_dim=2, backend="numpy").backend.name
        print(json.dumps(out))
    """, {"XPANN_BACKEND": "cupy"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["imported"] and out["pinned_numpy"] == "numpy"
    if CUPY_WORKS:
        assert out["error"] is None and out["model"] == "built"
    else:
        assert out["runtime_error"] and "xpann[cuda" in out["error"]
        assert out["model"] == "refused"


def test_xpann_backend_with_a_bad_name():
    result = run_python("""
        import xpann
        try:
            xpann.get_backend()
        except ValueError as error:
            print("ValueError:", error)
    """, {"XPANN_BACKEND": "opencl"})
    assert result.returncode == 0, result.stderr
    assert "ValueError" in result.stdout and "XPANN_BACKEND" in result.stdout and "numpy" in result.stdout


FAKE_CUPY = '''
"""A stand-in for CuPy on a machine whose driver is missing: import works, the GPU does not."""
__version__ = "99.0.0"


class _Runtime:
    @staticmethod
    def getDeviceCount():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")


class cuda:
    runtime = _Runtime()
'''


def test_cupy_installed_but_no_gpu(tmp_path):
    """CuPy importable but no usable GPU: a clear error for "cupy", numpy for "auto", no traceback."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(FAKE_CUPY)
    result = run_python("""
        import json, warnings
        warnings.simplefilter("error")
        import xpann
        out = {}
        try:
            xpann.set_backend("cupy")
        except xpann.BackendUnavailableError as error:
            out["error"] = str(error)
            out["chained"] = error.__cause__ is not None or not error.__suppress_context__
        out["auto"] = xpann.set_backend("auto").name
        out["available"] = xpann.available_backends()
        print(json.dumps(out))
    """, pythonpath=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "no usable GPU" in out["error"] and "xpann[cuda" in out["error"]
    assert "cudaErrorInsufficientDriver" in out["error"]
    assert not out["chained"]
    assert out["auto"] == "numpy" and out["available"] == ["numpy"]


def test_backend_arrays_and_transfers(backend):
    host = numpy.arange(6, dtype=numpy.float64).reshape(2, 3)
    device = backend.asarray(host, dtype="float32")
    assert backend.is_array(device) and device.dtype == numpy.float32
    back = backend.to_numpy(device)
    assert type(back) is numpy.ndarray and back.dtype == numpy.float32
    numpy.testing.assert_array_equal(back, host)
    backend.synchronize()
    erfc = backend.to_numpy(backend.erfc(backend.asarray([-1.0, 0.0, 0.5, 10.0])))
    numpy.testing.assert_allclose(erfc, [1.8427007929497148, 1.0, 0.4795001221869535, 2.088487583762545e-45],
                                  rtol=1e-14)
    draws = backend.to_numpy(backend.device_generator(3).random((1000,)))
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 5 * (1 / 12 / draws.size) ** 0.5  # U[0, 1): 5 standard errors
    numpy.testing.assert_array_equal(draws, backend.to_numpy(backend.device_generator(3).random((1000,))))
