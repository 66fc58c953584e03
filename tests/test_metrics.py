"""Metrics accumulated over several batches against NumPy formulas over all the data."""

import numpy
import pytest

import xpann

import reference
from xpann import losses, metrics

BATCHES = [0, 7, 20, 21, 40]  # uneven batches, one of a single sample


def run_metric(backend, metric, y, p, dtype="float32"):
    metric.reset()
    for start, stop in zip(BATCHES[:-1], BATCHES[1:]):
        yb = backend.asarray(y[start:stop]) if y.dtype.kind == "i" else backend.asarray(y[start:stop], dtype=dtype)
        metric.update(backend, yb, backend.asarray(p[start:stop], dtype=dtype))
    return metric.result()


def test_accuracy_follows_the_loss(backend):
    rng = numpy.random.default_rng(0)
    n, k = BATCHES[-1], 4
    scores = rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    want = numpy.mean(scores.argmax(axis=1) == labels)
    assert 0 < want < 1

    sparse = metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"))
    assert isinstance(sparse, metrics.SparseCategoricalAccuracy)
    assert run_metric(backend, sparse, labels, scores) == pytest.approx(want, rel=1e-12)

    categorical = metrics.get("acc", losses.get("categorical_crossentropy"))
    assert type(categorical) is metrics.CategoricalAccuracy
    assert run_metric(backend, categorical, numpy.eye(k)[labels], scores) == pytest.approx(want, rel=1e-12)

    y = rng.integers(0, 2, (n, 3)).astype(float)
    probabilities = rng.random((n, 3))
    binary = metrics.get("accuracy", losses.BinaryCrossentropy())
    assert isinstance(binary, metrics.BinaryAccuracy) and binary.threshold == 0.5
    assert run_metric(backend, binary, y, probabilities) == pytest.approx(
        numpy.mean((probabilities > 0.5) == (y > 0.5)), rel=1e-12)

    logits = rng.standard_normal((n, 3))
    from_logits = metrics.get("accuracy", losses.BinaryCrossentropy(from_logits=True))
    assert from_logits.threshold == 0.0
    assert run_metric(backend, from_logits, y, logits) == pytest.approx(numpy.mean((logits > 0) == (y > 0.5)))

    with pytest.raises(ValueError, match="classification loss"):
        metrics.get("accuracy", losses.get("mse"))
    with pytest.raises(ValueError, match="classification loss"):
        metrics.get("accuracy", None)  # no loss known yet


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_metrics(backend, outputs, dtype):
    rng = numpy.random.default_rng(1)
    n = BATCHES[-1]
    # targets far from 0 with a small spread: running sums must not cancel
    y = 1000.0 + rng.standard_normal((n, outputs)) * numpy.arange(1, outputs + 1)
    p = y + 0.3 * rng.standard_normal((n, outputs))
    y = y.astype(dtype).astype(numpy.float64)
    p = p.astype(dtype).astype(numpy.float64)
    tol = 1e-12 if dtype == "float64" else 1e-6
    r = p - y
    assert run_metric(backend, metrics.get("mse", None), y, p, dtype) == pytest.approx(numpy.mean(r**2), rel=tol)
    assert run_metric(backend, metrics.get("rmse", None), y, p, dtype) == pytest.approx(
        numpy.sqrt(numpy.mean(r**2)), rel=tol)
    assert run_metric(backend, metrics.get("mae", None), y, p, dtype) == pytest.approx(numpy.mean(abs(r)), rel=tol)
    r2 = run_metric(backend, metrics.get("r2", None), y, p, dtype)
    assert r2 == pytest.approx(reference.r2_uniform_average(y, p), rel=1e-9 if dtype == "float64" else 1e-5)


def test_r2_averages_the_columns(backend):
    """Two outputs on very different scales: each column's own R^2, averaged."""
    y = numpy.array([[1.0, 100.0], [2.0, 200.0], [3.0, 300.0], [4.0, 400.0]])
    p = numpy.array([[1.0, 250.0], [2.0, 250.0], [3.0, 250.0], [4.0, 250.0]])  # perfect, then the mean
    metric = metrics.get("r2", None)
    metric.update(backend, backend.asarray(y), backend.asarray(p))
    assert metric.result() == pytest.approx(0.5, rel=1e-12)  # (1 + 0) / 2


def test_empty_and_reset(backend):
    metric = metrics.get("mae", None)
    assert numpy.isnan(metric.result())
    metric.update(backend, backend.asarray(numpy.zeros((2, 1))), backend.asarray(numpy.ones((2, 1))))
    assert metric.result() == 1.0
    metric.reset()
    metric.update(backend, backend.asarray(numpy.zeros((2, 1))), backend.asarray(numpy.full((2, 1), 3.0)))
    assert metric.result() == 3.0
    constant = metrics.get("r2", None)
    constant.update(backend, backend.asarray(numpy.ones((3, 1))), backend.asarray(numpy.zeros((3, 1))))
    assert numpy.isnan(constant.result())
    with pytest.raises(ValueError, match="valid names are"):
        metrics.get("f2_score", None)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_precision_recall_f1_and_auc_equal_scikit_learns(classes, loss):
    metrics_module = pytest.importorskip("sklearn.metrics")
    rng = numpy.random.default_rng(classes)
    x = rng.normal(size=(500, 5)).astype("float32")
    y = numpy.digitize(x[:, 0] + rng.normal(size=500), [0.3] if classes == 2 else [-0.5, 0.7]).astype("int64")
    target = y if loss.startswith("sparse") else numpy.eye(classes, dtype="float32")[y]
    names = ["precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1", "auc"]
    model = xpann.Sequential([xpann.layers.Dense(8, activation="relu"), xpann.layers.Dense(classes, activation="softmax")],
                             input_dim=5, seed=0)
    model.compile("adam", loss, metrics=names)
    model.fit(x, target, epochs=2, verbose=0)
    results = model.evaluate(x, target)  # in batches: the sums cross batch boundaries
    p = model.predict(x)
    predicted = p.argmax(axis=1)
    assert 0 < (predicted == y).mean() < 1  # imperfect, so the scores can tell right from wrong
    average = "binary" if classes == 2 else "macro"
    expected = {
        "precision": metrics_module.precision_score(y, predicted, average=average, zero_division=0),
        "recall": metrics_module.recall_score(y, predicted, average=average, zero_division=0),
        "f1": metrics_module.f1_score(y, predicted, average=average, zero_division=0),
        "macro_precision": metrics_module.precision_score(y, predicted, average="macro", zero_division=0),
        "macro_recall": metrics_module.recall_score(y, predicted, average="macro", zero_division=0),
        "macro_f1": metrics_module.f1_score(y, predicted, average="macro", zero_division=0),
        "auc": metrics_module.roc_auc_score(y, p[:, 1]) if classes == 2 else
        metrics_module.roc_auc_score(y, p, multi_class="ovr"),
    }
    for name in names:
        assert results[name] == pytest.approx(expected[name], abs=1e-12), name


def test_binary_metrics_from_one_sigmoid_output_and_ties_in_auc():
    metrics_module = pytest.importorskip("sklearn.metrics")
    y = numpy.array([0, 0, 1, 1, 1, 0, 1, 0], dtype="float32")
    scores = numpy.array([0.2, 0.7, 0.7, 0.9, 0.4, 0.1, 0.7, 0.6], dtype="float32")
    backend = xpann.backend.host_backend()
    for name, reference in (("auc", metrics_module.roc_auc_score(y, scores)),
                            ("precision", metrics_module.precision_score(y, scores > 0.5)),
                            ("recall", metrics_module.recall_score(y, scores > 0.5)),
                            ("f1", metrics_module.f1_score(y, scores > 0.5))):
        metric = xpann.metrics.get(name, xpann.losses.get("binary_crossentropy"))
        metric.update(backend, y[:5, None], scores[:5, None])
        metric.update(backend, y[5:, None], scores[5:, None])
        assert metric.result() == pytest.approx(reference, abs=1e-12), name
    with pytest.raises(ValueError, match="precision needs a classification loss"):
        xpann.metrics.get("precision", xpann.losses.get("mse"))
