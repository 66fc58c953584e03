"""The optional fused optimizer kernels (numba) against the generic array code: ten steps of each
optimizer configuration on both paths must give bitwise the same parameters and state."""

import numpy
import pytest

from xpann import optimizers
from xpann.backend import _fused, host_backend

REASON = _fused.unavailable_reason()
needs_kernels = pytest.mark.skipif(REASON is not None, reason=f"fused kernels unavailable: {REASON}")

CONFIGS = [
    ("sgd", {}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adagrad", {}),
    ("adagrad", {"initial_accumulator_value": 0.1, "lr_decay": 0.01, "weight_decay": 0.05}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.8, "weight_decay": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("rmsprop", {"momentum": 0.5}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True, "weight_decay": 0.1}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 0.01}),
    ("adam", {"clipnorm": 0.5}),
    ("sgd", {"momentum": 0.9, "global_clipnorm": 1.0}),
    ("rmsprop", {"clipvalue": 0.01}),
]


def run(name, options, dtype, fused, steps=10, size=1037):
    backend = host_backend()
    rng = numpy.random.default_rng(7)
    params = rng.standard_normal(size).astype(dtype)
    optimizer = type(optimizers.get(name))(learning_rate=0.05, **options)
    optimizer.build(backend, params)
    assert optimizer._fused is not None
    if not fused:
        optimizer._fused = None
    segments = (slice(0, 500), slice(500, size))
    for step in range(steps):
        grads = (rng.standard_normal(size) * (1 + step)).astype(dtype)
        grads[::97] = 0  # zeros in the gradient (and so in the second moments at first)
        optimizer.apply(params, grads, segments)
    return params, optimizer


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, options", CONFIGS, ids=[f"{n}-{'-'.join(o) or 'default'}" for n, o in CONFIGS])
def test_fused_update_is_bitwise_the_generic_one(name, options, dtype):
    generic, reference = run(name, options, dtype, fused=False)
    fast, optimizer = run(name, options, dtype, fused=True)
    assert fast.dtype == generic.dtype
    numpy.testing.assert_array_equal(fast.view(f"u{fast.itemsize}"), generic.view(f"u{generic.itemsize}"))
    for slot, value in reference.slots.items():
        got = optimizer.slots[slot]
        numpy.testing.assert_array_equal(got.view(f"u{got.itemsize}"), value.view(f"u{value.itemsize}"))
    assert optimizer.get_state()[0] == reference.get_state()[0]


def test_a_subclass_with_its_own_update_keeps_it():
    class Halving(optimizers.SGD):
        def update_step(self, p, g, lr, step):
            p *= 0.5

    optimizer = Halving()
    params = numpy.ones(4, dtype="float32")
    optimizer.build(host_backend(), params)
    assert optimizer._fused is None
    optimizer.apply(params, numpy.ones(4, dtype="float32"))
    numpy.testing.assert_array_equal(params, 0.5)


@needs_kernels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_kernels_are_bitwise_the_array_code(dtype):
    kernel = _fused.kernel
    rng = numpy.random.default_rng(3)
    z = rng.standard_normal((37, 11)).astype(dtype)
    z[0, :4] = [numpy.nan, -0.0, 0.0, numpy.inf]
    z[1, :2] = [-numpy.inf, -numpy.nan]
    bias = rng.standard_normal(11).astype(dtype)
    bias[:4] = 0
    dy = rng.standard_normal((37, 11)).astype(dtype)
    dy[2, :3] = [numpy.nan, numpy.inf, -numpy.inf]

    def bits(a):
        return a.view(f"u{a.itemsize}")

    z_fused, y_fused = z.copy(), numpy.empty_like(z)
    kernel("bias_relu")(z_fused, bias, y_fused)
    z_plain = z + bias
    y_plain = numpy.maximum(z_plain, numpy.zeros(11, dtype=dtype))
    numpy.testing.assert_array_equal(bits(z_fused), bits(z_plain))
    numpy.testing.assert_array_equal(bits(y_fused), bits(y_plain))
    y_only = numpy.empty_like(z)
    kernel("relu")(z, y_only)
    numpy.testing.assert_array_equal(bits(y_only), bits(numpy.maximum(z, numpy.zeros(11, dtype=dtype))))
    dz = numpy.empty_like(z)
    kernel("relu_backward")(dy, y_plain, dz)
    with numpy.errstate(invalid="ignore"):  # inf * 0
        expected = dy * (y_plain > 0)
    numpy.testing.assert_array_equal(bits(dz), bits(expected))


@needs_kernels
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_training_with_kernels_is_bitwise_training_without(optimizer):
    import xpann

    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((50, 7)).astype("float32")
    y = rng.integers(0, 3, 50)

    def trained(fused):
        model = xpann.Sequential([xpann.layers.Dense(9, activation="relu"), xpann.layers.Dense(8, activation="relu"),
                                  xpann.layers.Dense(3, activation="softmax")], input_dim=7, seed=4, backend="numpy")
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        if not fused:
            model.optimizer._fused = None
            for layer in model.layers:
                layer._fused_relu = None
        else:
            assert model.optimizer._fused is not None and model.layers[0]._fused_relu is not None
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return model.get_weights(), history.history["loss"]

    (fused_weights, fused_loss), (plain_weights, plain_loss) = trained(True), trained(False)
    assert fused_loss == plain_loss
    for got, want in zip(fused_weights, plain_weights):
        numpy.testing.assert_array_equal(got.view("u4"), want.view("u4"))
