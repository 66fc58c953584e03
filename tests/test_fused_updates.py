"""The optional fused kernels (numba on the CPU, CuPy on a GPU) against the generic array code of
the same backend: ten steps of each optimizer configuration on both paths must give bitwise the same
parameters and state, and the ReLU passes bitwise the same arrays. The GPU's one-pass sparse softmax
cross-entropy sums in its own order and is compared within rounding."""

import numpy
import pytest

import xpann
from xpann import losses, optimizers
from xpann.backend import _fused, backend_status, resolve_backend

from conftest import TOLERANCES

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




@pytest.fixture(params=["numpy", "cupy"])
def kernel_backend(request):
    """A backend with fused kernels: NumPy where numba is installed, CuPy where a GPU works."""
    reason = _fused.unavailable_reason() if request.param == "numpy" else backend_status()["cupy"]
    if reason is not None:
        pytest.skip(f"{request.param} fused kernels unavailable: {reason}")
    return resolve_backend(request.param)


def bits(array):
    """The bit patterns of a host array, for bitwise comparison."""
    return array.view(f"u{array.itemsize}")


def assert_bitwise(got, want, backend):
    """Bitwise equal, except that a zero may carry either sign and a NaN any payload (CuPy's
    maximum returns its own NaN where the kernel keeps the input's)."""
    got, want = backend.to_numpy(got), backend.to_numpy(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    numpy.testing.assert_array_equal(got, want)  # NaN where NaN
    plain = (got != 0) & ~numpy.isnan(got)
    numpy.testing.assert_array_equal(bits(got)[plain], bits(want)[plain])


def run(backend, name, options, dtype, fused, steps=10, size=1037):
    rng = numpy.random.default_rng(7)
    params = backend.asarray(rng.standard_normal(size).astype(dtype))
    optimizer = type(optimizers.get(name))(learning_rate=0.05, **options)
    optimizer.build(backend, params)
    assert optimizer._fused is not None
    if not fused:
        optimizer._fused = None
    segments = (slice(0, 500), slice(500, size))
    for step in range(steps):
        grads = (rng.standard_normal(size) * (1 + step)).astype(dtype)
        grads[::97] = 0  # zeros in the gradient (and so in the second moments at first)
        optimizer.apply(params, backend.asarray(grads), segments)
    return params, optimizer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, options", CONFIGS, ids=[f"{n}-{'-'.join(o) or 'default'}" for n, o in CONFIGS])
def test_fused_update_is_bitwise_the_generic_one(kernel_backend, name, options, dtype):
    generic, reference = run(kernel_backend, name, options, dtype, fused=False)
    fast, optimizer = run(kernel_backend, name, options, dtype, fused=True)
    numpy.testing.assert_array_equal(bits(kernel_backend.to_numpy(fast)), bits(kernel_backend.to_numpy(generic)))
    for slot, value in reference.slots.items():
        numpy.testing.assert_array_equal(bits(kernel_backend.to_numpy(optimizer.slots[slot])),
                                         bits(kernel_backend.to_numpy(value)))
    assert optimizer.get_state()[0] == reference.get_state()[0]


def test_a_subclass_with_its_own_update_keeps_it():
    class Halving(optimizers.SGD):
        def update_step(self, p, g, lr, step):
            p *= 0.5

    optimizer = Halving()
    params = numpy.ones(4, dtype="float32")
    optimizer.build(resolve_backend("numpy"), params)
    assert optimizer._fused is None
    optimizer.apply(params, numpy.ones(4, dtype="float32"))
    numpy.testing.assert_array_equal(params, 0.5)


def test_every_rule_finds_its_kernels_under_its_kernel_name():
    if _fused.unavailable_reason() is not None:
        pytest.skip(f"fused kernels unavailable: {_fused.unavailable_reason()}")
    from xpann.backend._fused_kernels import KERNELS

    rules = [xpann.optimizers.get(name) for name in xpann.optimizers.OPTIMIZERS.names()]
    assert {rule.kernel or rule.name for rule in rules} | {"bias_relu", "relu", "relu_backward"} == set(KERNELS)
    assert _fused.kernel("sparse_softmax_crossentropy") is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_kernels_are_bitwise_the_array_code(kernel_backend, dtype):
    backend = kernel_backend
    xp, kernel = backend.xp, backend.fused_kernel
    rng = numpy.random.default_rng(3)
    z = rng.standard_normal((37, 11)).astype(dtype)
    z[0, :4] = [numpy.nan, -0.0, 0.0, numpy.inf]
    z[1, :2] = [-numpy.inf, -numpy.nan]
    bias = rng.standard_normal(11).astype(dtype)
    bias[:4] = 0
    dy = rng.standard_normal((37, 11)).astype(dtype)
    dy[2, :3] = [numpy.nan, numpy.inf, -numpy.inf]
    z, bias, dy = backend.asarray(z), backend.asarray(bias), backend.asarray(dy)
    zeros = xp.zeros(11, dtype=dtype)

    z_fused, y_fused = z.copy(), xp.empty_like(z)
    kernel("bias_relu")(z_fused, bias, y_fused)
    z_plain = z + bias
    y_plain = xp.maximum(z_plain, zeros)
    assert_bitwise(z_fused, z_plain, backend)
    assert_bitwise(y_fused, y_plain, backend)
    y_only = xp.empty_like(z)
    kernel("relu")(z, y_only)
    assert_bitwise(y_only, xp.maximum(z, zeros), backend)
    dz = xp.empty_like(z)
    kernel("relu_backward")(dy, y_plain, dz)
    with numpy.errstate(invalid="ignore"):  # inf * 0
        expected = dy * (y_plain > 0)
    assert_bitwise(dz, expected, backend)
    # a buffer one column wider (the layer's output block with its column of ones): first columns only
    wide = xp.full((37, 12), 7, dtype=dtype)
    z_wide = z.copy()
    kernel("bias_relu")(z_wide, bias, wide)
    assert_bitwise(wide[:, :11], y_plain, backend)
    assert bool((wide[:, 11] == 7).all())
    kernel("relu_backward")(dy, wide, dz)
    assert_bitwise(dz, expected, backend)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_training_with_kernels_matches_training_without(kernel_backend, optimizer, monkeypatch):
    """Bitwise on the CPU; on a GPU within float32 rounding (its cross-entropy kernel sums rows in
    its own order, and the gradients then differ in the last bits)."""
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((50, 7)).astype("float32")
    y = rng.integers(0, 3, 50)

    def trained(fused):
        monkeypatch.setenv("XPANN_FUSED", "1" if fused else "0")
        model = xpann.Sequential([xpann.layers.Dense(9, activation="relu"), xpann.layers.Dense(8, activation="relu"),
                                  xpann.layers.Dense(3, activation="softmax")], input_dim=7, seed=4,
                                 backend=kernel_backend.name)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        engaged = model.optimizer._fused is not None and model.plan.nodes[0].fused_relu is not None
        assert engaged == fused
        return model.get_weights(), history.history["loss"]

    (fused_weights, fused_loss), (plain_weights, plain_loss) = trained(True), trained(False)
    if kernel_backend.name == "numpy":
        assert fused_loss == plain_loss
        for got, want in zip(fused_weights, plain_weights):
            numpy.testing.assert_array_equal(bits(got), bits(want))
    else:
        numpy.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-5)
        for got, want in zip(fused_weights, plain_weights):
            numpy.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows, classes", [(64, 10), (5, 1), (300, 257)])
def test_gpu_softmax_crossentropy_kernel_matches_the_array_code(cupy_backend, dtype, rows, classes, monkeypatch):
    backend = cupy_backend
    rng = numpy.random.default_rng(11)
    logits = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    logits[0, 0] = 60  # a large logit: the shift by the row maximum keeps exp finite
    labels = rng.integers(0, classes, rows)
    loss = losses.SparseCategoricalCrossentropy()
    z, y = backend.asarray(logits), backend.asarray(labels)

    monkeypatch.setenv("XPANN_FUSED", "1")
    assert backend.fused_kernel("sparse_softmax_crossentropy") is not None
    fused_value, fused_grad = loss.logits_value_and_grad(backend, y, z, reuse=True)
    fused_value, fused_grad = float(fused_value), backend.to_numpy(fused_grad).copy()
    monkeypatch.setenv("XPANN_FUSED", "0")
    plain_value, plain_grad = loss.logits_value_and_grad(backend, y, z)
    numpy.testing.assert_allclose(fused_value, float(plain_value), **TOLERANCES[dtype])
    numpy.testing.assert_allclose(fused_grad, backend.to_numpy(plain_grad), **TOLERANCES[dtype])

    # and against a float64 NumPy reference
    z64 = logits.astype("float64")
    shifted = z64 - z64.max(axis=1, keepdims=True)
    log_p = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
    reference = -log_p[numpy.arange(rows), labels].mean()
    expected_grad = numpy.exp(log_p)
    expected_grad[numpy.arange(rows), labels] -= 1
    expected_grad /= rows
    numpy.testing.assert_allclose(fused_value, reference, **TOLERANCES[dtype])
    numpy.testing.assert_allclose(fused_grad, expected_grad, **TOLERANCES[dtype])
