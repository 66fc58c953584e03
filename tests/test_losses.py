"""Losses: values against float64 NumPy formulas, gradients against central finite differences
(probabilities and the fused logits paths), stability for any logits, dtypes, backend agreement."""

import warnings

import numpy
import pytest

import reference
from conftest import assert_backends_agree, finite_differences
from xpann import activations, losses

H = 1e-6
N, K = 6, 4


def numeric_gradient(f, x):
    """d f / d x by conftest's central differences (x: float64 host array, not changed)."""
    point = numpy.array(x, dtype=numpy.float64)
    return finite_differences(lambda: f(point), point, step=H)


def one_hot(labels, k=K):
    return numpy.eye(k)[labels]


def make_case(name, rng):
    """(loss object, y_true, y_pred host arrays, reference function) for each case."""
    if name in ("mse", "mae", "rmse"):
        y = rng.standard_normal((N, 2))
        pred = y + rng.choice([-1, 1], size=y.shape) * rng.uniform(0.1, 2.0, size=y.shape)
        ref = {"mse": reference.mse, "mae": reference.mae, "rmse": reference.rmse}[name]
        return losses.get(name), y, pred, ref
    if name.startswith("huber"):
        delta = 1.0 if name == "huber" else 0.5
        y = rng.standard_normal((N, 3))
        # |r| on both sides of delta, never at it
        size = numpy.where(rng.random(y.shape) < 0.5, rng.uniform(0.05, 0.8 * delta, y.shape),
                           rng.uniform(1.2 * delta, 3.0, y.shape))
        pred = y + rng.choice([-1, 1], size=y.shape) * size
        assert (numpy.abs(pred - y) < delta).any() and (numpy.abs(pred - y) > delta).any()
        return losses.Huber(delta=delta), y, pred, lambda t, p: reference.huber(t, p, delta)
    if name == "bce":
        y = rng.integers(0, 2, size=(N, 3)).astype(float)
        y[0, 0] = 0.3  # soft targets are allowed
        return losses.BinaryCrossentropy(), y, rng.uniform(0.05, 0.95, (N, 3)), reference.binary_crossentropy
    if name == "bce_logits":
        y = rng.integers(0, 2, size=(N, 3)).astype(float)
        return (losses.BinaryCrossentropy(from_logits=True), y, rng.normal(0, 3, (N, 3)),
                reference.binary_crossentropy_logits)
    if name == "cce":
        y = one_hot(rng.integers(0, K, N))
        y[1] = [0.1, 0.2, 0.3, 0.4]  # soft
        return losses.CategoricalCrossentropy(), y, rng.uniform(0.05, 0.95, (N, K)), reference.categorical_crossentropy
    if name == "cce_logits":
        y = one_hot(rng.integers(0, K, N))
        y[1] = [0.1, 0.2, 0.3, 0.4]
        y[2] = [0.0, 0.5, 0.0, 0.0]  # a row not summing to 1 (a weighted sample)
        return (losses.CategoricalCrossentropy(from_logits=True), y, rng.normal(0, 3, (N, K)),
                reference.categorical_crossentropy_logits)
    if name == "sparse":
        return (losses.SparseCategoricalCrossentropy(), rng.integers(0, K, N), rng.uniform(0.05, 0.95, (N, K)),
                reference.sparse_categorical_crossentropy)
    if name == "sparse_logits":
        return (losses.SparseCategoricalCrossentropy(from_logits=True), rng.integers(0, K, N),
                rng.normal(0, 3, (N, K)), reference.sparse_categorical_crossentropy_logits)
    if name.endswith("_smoothed"):  # label smoothing 0.2: Keras' softened targets, torch's sparse formula
        loss, y, pred, ref = make_case(name[:-len("_smoothed")], rng)
        smoothed = type(loss)(from_logits=loss.from_logits, label_smoothing=LS)
        if name.startswith("sparse"):
            ref = (reference.sparse_categorical_crossentropy_smoothed_logits if loss.from_logits
                   else reference.sparse_categorical_crossentropy_smoothed)
            return smoothed, y, pred, lambda t, p, ref=ref: ref(t, p, LS)
        classes = 2 if name.startswith("bce") else y.shape[-1]
        return smoothed, y, pred, lambda t, p, ref=ref: ref(reference.smoothed(t, LS, classes), p)
    raise KeyError(name)


LS = 0.2
CROSS_ENTROPIES = ["bce", "bce_logits", "cce", "cce_logits", "sparse", "sparse_logits"]
CASES = ["mse", "mae", "rmse", "huber", "huber_0.5", *CROSS_ENTROPIES, *(f"{c}_smoothed" for c in CROSS_ENTROPIES)]


def to_device(backend, y, pred):
    y_dev = backend.asarray(y) if y.dtype.kind == "i" else backend.asarray(y, dtype="float64")
    return y_dev, backend.asarray(pred, dtype="float64")


@pytest.mark.parametrize("case", CASES)
def test_value_matches_reference(backend, case):
    loss, y, pred, ref = make_case(case, numpy.random.default_rng(0))
    value, grad = loss.value_and_grad(backend, *to_device(backend, y, pred))
    assert value.shape == () and grad.shape == pred.shape
    assert float(value) == pytest.approx(ref(y, pred), rel=1e-13)


@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_finite_differences(backend, case):
    loss, y, pred, _ = make_case(case, numpy.random.default_rng(1))
    y_dev, pred_dev = to_device(backend, y, pred)
    _, grad = loss.value_and_grad(backend, y_dev, pred_dev)

    def f(p):
        return float(loss.value_and_grad(backend, y_dev, backend.asarray(p))[0])

    numpy.testing.assert_allclose(backend.to_numpy(grad), numeric_gradient(f, pred), rtol=1e-6, atol=1e-9)


FUSED = [("bce", losses.BinaryCrossentropy, "sigmoid", (N, 3)),
         ("cce", losses.CategoricalCrossentropy, "softmax", (N, K)),
         ("sparse", losses.SparseCategoricalCrossentropy, "softmax", (N, K))]


@pytest.mark.parametrize("smoothing", [0.0, LS], ids=["plain", "smoothed"])
@pytest.mark.parametrize("name, cls, activation, shape", FUSED, ids=[f[0] for f in FUSED])
def test_fused_logits_path(backend, name, cls, activation, shape, smoothing):
    """logits_value_and_grad = the loss of activation(logits), differentiated through it."""
    rng = numpy.random.default_rng(2)
    logits = rng.normal(0, 2, shape)
    if name == "sparse":
        y = rng.integers(0, shape[1], shape[0])
    elif name == "bce":
        y = rng.integers(0, 2, shape).astype(float)
    else:
        y = one_hot(rng.integers(0, shape[1], shape[0]))
    loss = cls(label_smoothing=smoothing)  # on probabilities, as a model with a sigmoid/softmax output uses it
    act = activations.get(activation)
    assert loss.fuses_with(act) and not cls(from_logits=True).fuses_with(act)
    y_dev, z_dev = to_device(backend, y, logits)
    value, grad = loss.logits_value_and_grad(backend, y_dev, z_dev)

    probabilities = act.forward(backend, z_dev)
    unfused, dp = loss.value_and_grad(backend, y_dev, probabilities)
    chained = act.backward(backend, dp, z_dev, probabilities)
    assert float(value) == pytest.approx(float(unfused), rel=1e-12)
    numpy.testing.assert_allclose(backend.to_numpy(grad), backend.to_numpy(chained), rtol=1e-9, atol=1e-12)

    def f(z):
        return float(loss.logits_value_and_grad(backend, y_dev, backend.asarray(z))[0])

    numpy.testing.assert_allclose(backend.to_numpy(grad), numeric_gradient(f, logits), rtol=1e-6, atol=1e-9)
    same_value, same_grad = cls(from_logits=True, label_smoothing=smoothing).value_and_grad(backend, y_dev, z_dev)
    assert float(same_value) == float(value)
    numpy.testing.assert_array_equal(backend.to_numpy(same_grad), backend.to_numpy(grad))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_from_logits_is_stable(backend, dtype):
    z = numpy.array([[1000.0], [-1000.0], [1000.0], [-1000.0]])
    y = numpy.array([[1.0], [0.0], [0.0], [1.0]])
    z3 = numpy.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0], [0.0, 0.0, 0.0]])
    labels = numpy.array([0, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce, bce_grad = losses.BinaryCrossentropy(from_logits=True).value_and_grad(
            backend, backend.asarray(y, dtype=dtype), backend.asarray(z, dtype=dtype))
        cce, cce_grad = losses.CategoricalCrossentropy(from_logits=True).value_and_grad(
            backend, backend.asarray(one_hot(labels, 3), dtype=dtype), backend.asarray(z3, dtype=dtype))
        scce, scce_grad = losses.SparseCategoricalCrossentropy(from_logits=True).value_and_grad(
            backend, backend.asarray(labels), backend.asarray(z3, dtype=dtype))
    assert bce.dtype == cce.dtype == scce.dtype == numpy.dtype(dtype)
    # per sample: 0, 0, 1000, 1000
    assert float(bce) == pytest.approx(500.0, rel=1e-6)
    numpy.testing.assert_allclose(backend.to_numpy(bce_grad), [[0.0], [0.0], [0.25], [-0.25]], atol=1e-7)
    want = (0.0 + 1000.0 + numpy.log(3.0)) / 3  # -log p of the labels: ~0, 1000, log 3
    assert float(cce) == pytest.approx(want, rel=1e-6)
    assert float(scce) == pytest.approx(want, rel=1e-6)
    numpy.testing.assert_allclose(backend.to_numpy(scce_grad), backend.to_numpy(cce_grad), atol=1e-7)
    expected = (reference.softmax(z3) - one_hot(labels, 3)) / 3
    numpy.testing.assert_allclose(backend.to_numpy(cce_grad), expected, atol=1e-7)


def test_probabilities_are_clipped(backend):
    """p of exactly 0 or 1 gives a finite loss of -log(1e-7) and no gradient through the clip."""
    y = numpy.array([[1.0, 0.0], [0.0, 1.0]])
    p = numpy.array([[0.0, 1.0], [0.5, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = losses.BinaryCrossentropy().value_and_grad(backend, *to_device(backend, y, p))
        cvalue, cgrad = losses.CategoricalCrossentropy().value_and_grad(backend, *to_device(backend, y, p))
        svalue, sgrad = losses.SparseCategoricalCrossentropy().value_and_grad(
            backend, backend.asarray(numpy.array([0, 1])), backend.asarray(p))
    assert float(value) == pytest.approx(reference.binary_crossentropy(y, p), rel=1e-12)
    assert float(value) == pytest.approx((2 * -numpy.log(1e-7) + 2 * -numpy.log(0.5)) / 4, rel=1e-6)
    numpy.testing.assert_array_equal(backend.to_numpy(grad)[0], [0.0, 0.0])
    numpy.testing.assert_allclose(backend.to_numpy(grad)[1], [2.0 / 4, -2.0 / 4], rtol=1e-12)
    assert float(cvalue) == pytest.approx(reference.categorical_crossentropy(y, p), rel=1e-12)
    assert float(svalue) == pytest.approx(float(cvalue), rel=1e-12)
    numpy.testing.assert_array_equal(backend.to_numpy(cgrad), backend.to_numpy(sgrad))
    assert backend.to_numpy(cgrad)[0, 0] == 0.0


def test_rmse_gradient_at_zero_is_zero(backend):
    y = backend.asarray(numpy.ones((3, 2)))
    value, grad = losses.get("rmse").value_and_grad(backend, y, y.copy())
    assert float(value) == 0.0
    assert not numpy.isnan(backend.to_numpy(grad)).any()
    numpy.testing.assert_array_equal(backend.to_numpy(grad), 0.0)


@pytest.mark.parametrize("case", CASES)
def test_float32_stays_float32(backend, case):
    loss, y, pred, ref = make_case(case, numpy.random.default_rng(3))
    y_dev = backend.asarray(y) if y.dtype.kind == "i" else backend.asarray(y, dtype="float32")
    value, grad = loss.value_and_grad(backend, y_dev, backend.asarray(pred, dtype="float32"))
    assert value.dtype == numpy.float32 and grad.dtype == numpy.float32
    assert float(value) == pytest.approx(ref(y, pred), rel=1e-5)


def test_call_gives_a_float(backend):
    rng = numpy.random.default_rng(4)
    y, p = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    assert losses.get("mse")(y, p) == pytest.approx(reference.mse(y, p), rel=1e-12)
    assert losses.get("huber")(y.tolist(), p.tolist()) == pytest.approx(reference.huber(y, p), rel=1e-12)
    labels = numpy.array([0.0, 2.0, 1.0])  # whole-number labels given as floats
    probabilities = reference.softmax(rng.standard_normal((3, 3)))
    assert losses.get("sparse_categorical_crossentropy")(labels, probabilities) == pytest.approx(
        reference.sparse_categorical_crossentropy(labels.astype(int), probabilities), rel=1e-12)


def test_names_and_errors():
    for name, cls in [("mse", losses.MeanSquaredError), ("mean_absolute_error", losses.MeanAbsoluteError),
                      ("rmse", losses.RootMeanSquaredError), ("huber", losses.Huber),
                      ("binary_crossentropy", losses.BinaryCrossentropy),
                      ("categorical_crossentropy", losses.CategoricalCrossentropy),
                      ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy)]:
        assert type(losses.get(name)) is cls
    assert losses.get("huber").delta == 1.0
    assert losses.get("binary_crossentropy").from_logits is False
    with pytest.raises(ValueError, match="valid names are"):
        losses.get("hinge")
    with pytest.raises(ValueError):
        losses.Huber(delta=0)
    with pytest.raises(ValueError):
        losses.BinaryCrossentropy(from_logits="yes")
    restored = losses.deserialize(losses.serialize(losses.CategoricalCrossentropy(from_logits=True)))
    assert isinstance(restored, losses.CategoricalCrossentropy) and restored.from_logits


@pytest.mark.parametrize("case", CASES)
def test_backends_agree(case):
    loss, y, pred, _ = make_case(case, numpy.random.default_rng(5))

    def run(backend):
        y_dev = backend.asarray(y) if y.dtype.kind == "i" else backend.asarray(y, dtype="float32")
        value, grad = loss.value_and_grad(backend, y_dev, backend.asarray(pred, dtype="float32"))
        return [value, grad]

    assert_backends_agree(run, "float32")


@pytest.mark.parametrize("from_logits", [False, True])
def test_smoothed_sparse_labels_equal_smoothed_one_hot_targets(backend, from_logits):
    """Sparse and dense categorical cross-entropy agree under label smoothing, weighted or not."""
    rng = numpy.random.default_rng(5)
    labels = rng.integers(0, K, N)
    pred = rng.normal(0, 2, (N, K)) if from_logits else rng.dirichlet(numpy.ones(K), N)
    weights = backend.asarray(rng.uniform(0.5, 2.0, N))
    sparse = losses.SparseCategoricalCrossentropy(from_logits=from_logits, label_smoothing=LS)
    dense = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=LS)
    for sample_weight in (None, weights):
        a = sparse.value_and_grad(backend, backend.asarray(labels), backend.asarray(pred), sample_weight)
        b = dense.value_and_grad(backend, backend.asarray(one_hot(labels)), backend.asarray(pred), sample_weight)
        assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-13)
        numpy.testing.assert_allclose(backend.to_numpy(a[1]), backend.to_numpy(b[1]), rtol=1e-12, atol=1e-15)


def test_label_smoothing_is_checked_and_kept_in_the_config():
    loss = losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    again = losses.deserialize(losses.serialize(loss))
    assert type(again) is type(loss) and again.label_smoothing == 0.1 and not again.from_logits
    assert "label_smoothing" not in losses.BinaryCrossentropy().get_config()  # old configs stay as they were
    for bad in (-0.1, 1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="label_smoothing"):
            losses.CategoricalCrossentropy(label_smoothing=bad)
