"""Initialisers: statistics per API.md's formulas, seeding, and the same start on every backend."""

import math

import numpy
import pytest

import reference
import xpann
from conftest import assert_backends_agree
from xpann import initializers
from xpann.backend import host_generator

SHAPE = (300, 500)  # 150,000 draws


def std_limit(kind, draws):
    """5 standard errors of a sample std, relative to the true std: sqrt((kurtosis - 1) / (4 n)),
    kurtosis 3 for a normal and 9/5 for a uniform."""
    kurtosis = 3.0 if kind == "normal" else 1.8
    return 5 * math.sqrt((kurtosis - 1) / (4 * draws))
RANDOM = ["uniform", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
          "lecun_normal"]


@pytest.mark.parametrize("name", RANDOM)
def test_statistics_follow_the_formulas(name):
    fan_in, fan_out = SHAPE
    w = initializers.get(name)(SHAPE, host_generator(0), fan_in, fan_out)
    assert w.shape == SHAPE and w.dtype == numpy.float64
    kind, spread = reference.initializer_spread(name, fan_in, fan_out)
    std = spread if kind == "normal" else spread / math.sqrt(3)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=std_limit(kind, w.size))  # about 0.9% (normal), 0.6% (uniform)
    if kind == "uniform":
        assert numpy.abs(w).max() <= spread
        assert numpy.abs(w).max() > 0.999 * spread
        # flat: each tenth of [-limit, limit] holds about a tenth of the draws
        counts, _ = numpy.histogram(w, bins=10, range=(-spread, spread))
        numpy.testing.assert_allclose(counts / w.size, 0.1, atol=5 * math.sqrt(0.1 * 0.9 / w.size))
    else:
        # plain (not truncated) normal: about 0.27% beyond 3 std, none cut off at 2 std
        beyond = numpy.mean(numpy.abs(w) > 3 * std)
        assert abs(beyond - 0.0027) < 5 * math.sqrt(0.0027 / w.size)  # within 5 standard errors
        assert numpy.abs(w).max() > 4 * std


@pytest.mark.parametrize("name", RANDOM)
def test_fans_come_from_the_shape_by_default(name):
    shape = (200, 800)
    default = initializers.get(name)(shape, host_generator(1))
    explicit = initializers.get(name)(shape, host_generator(1), 200, 800)
    numpy.testing.assert_array_equal(default, explicit)
    swapped = initializers.get(name)(shape, host_generator(1), 800, 200)
    if name.startswith("glorot"):  # fan_in + fan_out: the same spread, so the same draws
        numpy.testing.assert_array_equal(default, swapped)
    else:
        assert not numpy.allclose(default, swapped)


@pytest.mark.parametrize("name, value", [("zeros", 0.0), ("ones", 1.0)])
def test_constants(name, value):
    w = initializers.get(name)((7, 3), host_generator(0), 7, 3)
    assert w.shape == (7, 3) and w.dtype == numpy.float64
    numpy.testing.assert_array_equal(w, value)
    numpy.testing.assert_array_equal(initializers.Constant(2.5)((4,), host_generator(0)), 2.5)


@pytest.mark.parametrize("name", RANDOM)
def test_seeds(name):
    init = initializers.get(name)
    a = init((30, 20), host_generator(7), 30, 20)
    b = init((30, 20), host_generator(7), 30, 20)
    c = init((30, 20), host_generator(8), 30, 20)
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.allclose(a, c)


def test_variance_scaling_scale_and_modes():
    rng_shape = (400, 100)
    for mode, fan in [("fan_in", 400), ("fan_out", 100), ("fan_avg", 250)]:
        w = initializers.VarianceScaling(scale=3.0, mode=mode, distribution="normal")(rng_shape, host_generator(2))
        assert w.std() == pytest.approx(math.sqrt(3.0 / fan), rel=std_limit("normal", w.size)), mode
    scaled = initializers.HeNormal(scale=4.0)((400, 100), host_generator(3))
    assert scaled.std() == pytest.approx(math.sqrt(4.0 / 400), rel=std_limit("normal", scaled.size))
    with pytest.raises(ValueError):
        initializers.VarianceScaling(mode="fan_max")
    with pytest.raises(ValueError):
        initializers.VarianceScaling(distribution="truncated_normal")
    with pytest.raises(ValueError, match="valid names are"):
        initializers.get("orthogonal")


def test_serialization_round_trip():
    for name in RANDOM + ["zeros", "ones"]:
        init = initializers.get(name)
        again = initializers.deserialize(initializers.serialize(init))
        assert type(again) is type(init) and again.get_config() == init.get_config()
    custom = initializers.deserialize(initializers.serialize(initializers.HeUniform(scale=5.0)))
    assert custom.scale == 5.0


def test_dense_uses_its_fans_and_the_model_seed():
    """Through a model: kernel (in, out) per formula, bias zeros; same seed, same weights."""
    def build(seed):
        return xpann.Sequential([xpann.layers.Dense(400, kernel_initializer="he_uniform"),
                                 xpann.layers.Dense(3, kernel_initializer="glorot_normal",
                                                    bias_initializer="uniform")],
                                input_dim=250, seed=seed, backend="numpy")

    kernel, bias, kernel2, bias2 = build(0).get_weights()
    limit = math.sqrt(6 / 250)
    assert numpy.abs(kernel).max() <= limit and numpy.abs(kernel).max() > 0.99 * limit
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=std_limit("uniform", kernel.size))
    numpy.testing.assert_array_equal(bias, 0.0)
    assert kernel2.std() == pytest.approx(math.sqrt(2 / 403), rel=std_limit("normal", kernel2.size))
    assert numpy.abs(bias2).max() <= 1 / math.sqrt(400) and numpy.abs(bias2).max() > 0
    same = build(0).get_weights()
    other = build(1).get_weights()
    for a, b in zip(build(0).get_weights(), same):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.allclose(kernel, other[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_start_on_every_backend(dtype):
    def run(backend):
        model = xpann.Sequential(
            [xpann.layers.Dense(16, activation="relu", kernel_initializer="he_normal"),
             xpann.layers.Dense(8, kernel_initializer="lecun_uniform", bias_initializer="uniform"),
             xpann.layers.Dense(3, activation="softmax")],
            input_dim=5, seed=11, backend=backend.name, dtype=dtype)
        assert model.backend.name == backend.name
        return model.parameters.data  # the device buffer itself, not a host copy

    # drawn on the host, so the two backends hold bit-identical starts
    assert_backends_agree(run, dtype, rtol=0, atol=0)
