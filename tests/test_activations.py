"""Activations: values against float64 NumPy formulas, backward against central finite differences,
stability at |z| = 1000, dtypes, and NumPy/CuPy agreement."""

import math
import warnings

import numpy
import pytest

import reference
from conftest import assert_backends_agree, finite_differences
from xpann import activations

NAMES = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus",
         "softmax"]
H = 1e-6


def away_from_zero(rng, shape, low=0.1, high=3.0):
    """Values with |z| in [low, high], so no finite difference straddles a kink at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def numeric_gradient(f, z, w):
    """d/dz of sum(w * f(z)) by conftest's central differences (z: float64 host array, not changed)."""
    point = numpy.array(z, dtype=numpy.float64)
    return finite_differences(lambda: float(numpy.sum(w * f(point))), point, step=H)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(backend, name):
    rng = numpy.random.default_rng(0)
    z = rng.normal(0.0, 3.0, size=(6, 5))
    act = activations.get(name)
    got = backend.to_numpy(act.forward(backend, backend.asarray(z)))
    numpy.testing.assert_allclose(got, reference.ACTIVATIONS[name](z), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_finite_differences(backend, name):
    rng = numpy.random.default_rng(1)
    z = away_from_zero(rng, (4, 5))
    w = rng.standard_normal(z.shape)
    act = activations.get(name)

    def f(values):
        return backend.to_numpy(act.forward(backend, backend.asarray(values)))

    z_dev = backend.asarray(z)
    y = act.forward(backend, z_dev)
    analytic = backend.to_numpy(act.backward(backend, backend.asarray(w), z_dev, y))
    numeric = numeric_gradient(f, z, w)
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", [n for n in NAMES if not activations.get(n).uses_input])
def test_backward_from_output_alone(backend, name):
    """An activation that says it does not use its input must not need z in backward."""
    rng = numpy.random.default_rng(2)
    z = backend.asarray(away_from_zero(rng, (3, 4)))
    dy = backend.asarray(rng.standard_normal((3, 4)))
    act = activations.get(name)
    y = act.forward(backend, z)
    with_input = backend.to_numpy(act.backward(backend, dy, z, y))
    without = backend.to_numpy(act.backward(backend, dy, None, y))
    numpy.testing.assert_array_equal(without, with_input)


@pytest.mark.parametrize("name", NAMES)
def test_parameterised_classes_and_float32(backend, name):
    """float32 in, float32 out (no silent upcast), close to the float64 result."""
    rng = numpy.random.default_rng(3)
    z = away_from_zero(rng, (5, 4)).astype(numpy.float32)
    dy = rng.standard_normal((5, 4)).astype(numpy.float32)
    act = activations.get(name)
    y32 = act.forward(backend, backend.asarray(z))
    g32 = act.backward(backend, backend.asarray(dy), backend.asarray(z), y32)
    assert y32.dtype == numpy.float32 and g32.dtype == numpy.float32
    z64, dy64 = z.astype(numpy.float64), dy.astype(numpy.float64)
    y64 = act.forward(backend, backend.asarray(z64))
    g64 = act.backward(backend, backend.asarray(dy64), backend.asarray(z64), y64)
    numpy.testing.assert_allclose(backend.to_numpy(y32), backend.to_numpy(y64), rtol=1e-6, atol=1e-6)
    numpy.testing.assert_allclose(backend.to_numpy(g32), backend.to_numpy(g64), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act, formula", [
    (activations.LeakyReLU(negative_slope=0.2), lambda z: numpy.where(z > 0, z, 0.2 * z)),
    (activations.LeakyReLU(negative_slope=0.0), lambda z: numpy.maximum(z, 0)),
    (activations.ELU(alpha=0.5), lambda z: reference.elu(z, 0.5)),
], ids=["leaky_0.2", "leaky_0", "elu_0.5"])
def test_parameters_are_used(backend, act, formula):
    rng = numpy.random.default_rng(4)
    z = away_from_zero(rng, (4, 4))
    w = rng.standard_normal(z.shape)
    z_dev = backend.asarray(z)
    y = act.forward(backend, z_dev)
    numpy.testing.assert_allclose(backend.to_numpy(y), formula(z), rtol=1e-14)
    analytic = backend.to_numpy(act.backward(backend, backend.asarray(w), z_dev, y))
    numeric = numeric_gradient(formula, z, w)
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_and_quiet(backend, name, dtype):
    z = numpy.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]])
    act = activations.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z_dev = backend.asarray(z, dtype=dtype)
        y = act.forward(backend, z_dev)
        dz = act.backward(backend, backend.asarray(numpy.ones_like(z), dtype=dtype), z_dev, y)
        y, dz = backend.to_numpy(y), backend.to_numpy(dz)
    assert numpy.isfinite(y).all() and numpy.isfinite(dz).all()
    want = reference.ACTIVATIONS[name](z)
    numpy.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-30)


def test_extreme_values_exactly():
    """The stable formulas give the limits, not NaN or overflow."""
    from xpann.backend import resolve_backend

    backend = resolve_backend("numpy")
    z = numpy.array([-1000.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = activations.get("sigmoid").forward(backend, z)
        sp = activations.get("softplus").forward(backend, z)
        sp_grad = activations.get("softplus").backward(backend, numpy.ones(2), z, sp)
        sm = activations.get("softmax").forward(backend, numpy.array([[1000.0, 0.0, -1000.0]]))
    numpy.testing.assert_array_equal(s, [0.0, 1.0])
    numpy.testing.assert_array_equal(sp, [0.0, 1000.0])
    numpy.testing.assert_array_equal(sp_grad, [0.0, 1.0])
    numpy.testing.assert_array_equal(sm, [[1.0, 0.0, 0.0]])
    # far tails keep their relative precision
    small = activations.get("sigmoid").forward(backend, numpy.array([-700.0]))
    numpy.testing.assert_allclose(small, numpy.exp(-700.0), rtol=1e-12)


def test_softmax_rows_sum_to_one_and_shift_invariance(backend):
    rng = numpy.random.default_rng(5)
    z = rng.normal(0, 5, size=(7, 4))
    act = activations.get("softmax")
    y = backend.to_numpy(act.forward(backend, backend.asarray(z)))
    numpy.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)
    shifted = backend.to_numpy(act.forward(backend, backend.asarray(z + 500.0)))
    numpy.testing.assert_allclose(shifted, y, rtol=1e-12)


def test_names_and_errors():
    assert isinstance(activations.get(None), activations.Linear)
    assert isinstance(activations.get("silu"), activations.Swish)
    assert activations.get("leaky_relu").negative_slope == 0.01
    assert activations.get("elu").alpha == 1.0
    with pytest.raises(ValueError, match="valid names are .*relu"):
        activations.get("mish")
    with pytest.raises(ValueError):
        activations.LeakyReLU(negative_slope=-1)
    with pytest.raises(ValueError):
        activations.ELU(alpha=0)
    for name in NAMES:
        act = activations.get(name)
        assert activations.deserialize(activations.serialize(act)) == act
    assert activations.deserialize(activations.serialize(activations.LeakyReLU(0.3))).negative_slope == 0.3


@pytest.mark.parametrize("name", NAMES)
def test_backends_agree(name):
    rng = numpy.random.default_rng(6)
    z = rng.normal(0, 3, size=(16, 5)).astype(numpy.float32)
    dy = rng.standard_normal((16, 5)).astype(numpy.float32)
    act = activations.get(name)

    def run(backend):
        z_dev = backend.asarray(z)
        y = act.forward(backend, z_dev)
        return [y, act.backward(backend, backend.asarray(dy), z_dev, y)]

    assert_backends_agree(run, "float32")


def test_gelu_keeps_its_far_negative_tail(backend):
    z = backend.asarray([-10.0, -6.0], dtype="float32")
    y = backend.to_numpy(activations.GELU().forward(backend, z))
    expected = [-10.0 * 0.5 * math.erfc(10.0 / math.sqrt(2)), -6.0 * 0.5 * math.erfc(6.0 / math.sqrt(2))]
    numpy.testing.assert_allclose(y, expected, rtol=1e-5)
