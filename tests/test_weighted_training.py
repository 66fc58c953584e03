"""Weighted losses (Keras' reduction sum(w_i * loss_i) / n) against float64 references, through
fit, evaluate and class_weight; the fused loss-from-logits paths take weights too."""

import numpy
import pytest

import reference
import xpann
from conftest import TOLERANCES, finite_differences
from xpann import layers

LOSSES = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
          "sparse_categorical_crossentropy"]


def targets(name, rows, width, rng):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, width, rows)
    if name == "categorical_crossentropy":
        return numpy.eye(width)[rng.integers(0, width, rows)]
    if name == "binary_crossentropy":
        return rng.integers(0, 2, (rows, width)).astype(float)
    return rng.standard_normal((rows, width))


def predictions(name, rows, width, rng):
    z = rng.standard_normal((rows, width))
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        return reference.softmax(z)
    return reference.sigmoid(z) if name == "binary_crossentropy" else z


@pytest.mark.parametrize("name", LOSSES)
def test_weighted_losses_and_gradients_match_the_reference(backend, name):
    rng = numpy.random.default_rng(0)
    rows, width = 6, 3
    y, p = targets(name, rows, width, rng), predictions(name, rows, width, rng)
    w = rng.uniform(0, 2, rows)
    loss = xpann.losses.get(name)
    y_device = backend.asarray(y) if name != "sparse_categorical_crossentropy" else backend.asarray(y, dtype="int64")
    value, grad = loss.value_and_grad(backend, y_device, backend.asarray(p), sample_weight=backend.asarray(w))
    assert float(value) == pytest.approx(reference.weighted_loss(name, y, p, w), rel=1e-12)
    moved = p.copy()
    numeric = finite_differences(lambda: reference.weighted_loss(name, y, moved, w), moved)
    numpy.testing.assert_allclose(backend.to_numpy(grad), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name, activation", [("sparse_categorical_crossentropy", "softmax"),
                                              ("categorical_crossentropy", "softmax"),
                                              ("binary_crossentropy", "sigmoid")])
def test_the_loss_from_logits_takes_weights(backend, name, activation):
    rng = numpy.random.default_rng(1)
    z = rng.standard_normal((6, 3))
    y = targets(name, 6, 3, rng)
    w = rng.uniform(0, 2, 6)
    loss = xpann.losses.get(name)
    y_device = backend.asarray(y) if name != "sparse_categorical_crossentropy" else backend.asarray(y, dtype="int64")
    value, grad = loss.logits_value_and_grad(backend, y_device, backend.asarray(z), sample_weight=backend.asarray(w))
    p = reference.softmax(z) if activation == "softmax" else reference.sigmoid(z)
    assert float(value) == pytest.approx(reference.weighted_loss(name, y, p, w), rel=1e-9)
    unweighted, plain = loss.logits_value_and_grad(backend, y_device, backend.asarray(z),
                                                   sample_weight=backend.asarray(numpy.ones(6)))
    expected, expected_grad = loss.logits_value_and_grad(backend, y_device, backend.asarray(z))
    assert float(unweighted) == pytest.approx(float(expected), rel=1e-12)
    numpy.testing.assert_allclose(backend.to_numpy(plain), backend.to_numpy(expected_grad), **TOLERANCES["float64"])
    assert grad.shape == z.shape


def classifier(seed=0, dtype="float64"):
    model = xpann.Sequential([layers.Dense(6, activation="tanh"), layers.Dense(3, activation="softmax")],
                             input_dim=4, seed=seed, dtype=dtype)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def blobs(rows=40, seed=0):
    rng = numpy.random.default_rng(seed)
    return rng.standard_normal((rows, 4)), rng.integers(0, 3, rows)


def test_unit_weights_train_as_no_weights():
    x, y = blobs()
    plain, weighted = classifier(), classifier()
    plain.fit(x, y, epochs=2, batch_size=8, verbose=0)
    weighted.fit(x, y, epochs=2, batch_size=8, verbose=0, sample_weight=numpy.ones(40))
    for got, want in zip(weighted.get_weights(), plain.get_weights()):
        numpy.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_class_weight_equals_the_matching_sample_weight():
    x, y = blobs()
    table = {0: 0.5, 1: 2.0, 2: 1.0}
    by_class, by_sample = classifier(), classifier()
    by_class.fit(x, y, epochs=2, batch_size=8, verbose=0, class_weight=table)
    by_sample.fit(x, y, epochs=2, batch_size=8, verbose=0, sample_weight=numpy.array([table[c] for c in y]))
    for got, want in zip(by_class.get_weights(), by_sample.get_weights()):
        numpy.testing.assert_array_equal(got, want)
    both = classifier()
    both.fit(x, y, epochs=1, batch_size=8, verbose=0, class_weight={1: 0.0}, sample_weight=numpy.full(40, 3.0))
    kept = classifier()
    kept.fit(x, y, epochs=1, batch_size=8, verbose=0, sample_weight=numpy.where(y == 1, 0.0, 3.0))
    for got, want in zip(both.get_weights(), kept.get_weights()):
        numpy.testing.assert_array_equal(got, want)


def test_a_zero_weight_sample_does_not_move_the_weights():
    x, y = blobs(rows=8)
    weights = numpy.array([1.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    changed_x, changed_y = x.copy(), y.copy()
    changed_x[4:] = -changed_x[4:]  # what the zero-weight samples hold cannot matter
    changed_y[4:] = (changed_y[4:] + 1) % 3
    first, second = classifier(), classifier()
    first.train_on_batch(x, y, sample_weight=weights)
    second.train_on_batch(changed_x, changed_y, sample_weight=weights)
    for got, want in zip(first.get_weights(), second.get_weights()):
        numpy.testing.assert_array_equal(got, want)


def test_all_zero_or_overflowing_weights_are_refused():
    x, y = blobs(rows=8)
    model = classifier()
    with pytest.raises(ValueError, match="Every sample_weight is 0"):
        model.train_on_batch(x, y, sample_weight=numpy.zeros(8))
    with pytest.raises(ValueError, match=f"too large for {model.dtype} once multiplied"):
        model.fit(x, y, sample_weight=numpy.full(8, 1e303 if model.dtype == "float64" else 1e300), verbose=0)


def test_evaluate_weights_the_loss():
    x, y = blobs()
    model = classifier()
    w = numpy.random.default_rng(2).uniform(0, 3, 40)
    p = model.predict(x)
    result = model.evaluate(x, y, sample_weight=w)
    assert result["loss"] == pytest.approx(reference.weighted_loss("sparse_categorical_crossentropy", y, p, w), rel=1e-10)
    assert model.evaluate(x, y)["loss"] == pytest.approx(
        reference.sparse_categorical_crossentropy(y, p), rel=1e-10)


def test_validation_split_and_data_carry_their_weights():
    x, y = blobs()
    w = numpy.linspace(0.5, 2, 40)
    model = classifier()
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_split=0.25, sample_weight=w)
    held = classifier()
    held.set_weights(model.get_weights())
    assert history.history["val_loss"][0] == pytest.approx(held.evaluate(x[30:], y[30:], sample_weight=w[30:])["loss"])
    history = model.fit(x[:30], y[:30], epochs=1, verbose=0, validation_data=(x[30:], y[30:], w[30:]))
    held.set_weights(model.get_weights())
    assert history.history["val_loss"][0] == pytest.approx(held.evaluate(x[30:], y[30:], sample_weight=w[30:])["loss"])


@pytest.mark.parametrize("kwargs, words", [
    ({"sample_weight": numpy.ones(5)}, "one per sample"),
    ({"sample_weight": -numpy.ones(40)}, "finite numbers >= 0"),
    ({"sample_weight": numpy.full(40, numpy.nan)}, "finite numbers >= 0"),
    ({"sample_weight": numpy.full(40, numpy.inf)}, "finite numbers >= 0"),
    ({"class_weight": {3: 1.0}}, "the model's classes are 0 .. 2"),
    ({"class_weight": {0: -1.0}}, "finite number >= 0"),
    ({"class_weight": [1.0, 2.0]}, "must be a dict"),
])
def test_bad_weights_are_value_errors(kwargs, words):
    x, y = blobs()
    model = classifier()
    before = model.get_weights()
    with pytest.raises(ValueError, match=words):
        model.fit(x, y, verbose=0, **kwargs)
    for got, want in zip(model.get_weights(), before):
        numpy.testing.assert_array_equal(got, want)


def test_class_weight_on_a_binary_sigmoid_model():
    rng = numpy.random.default_rng(0)
    x, y = rng.standard_normal((30, 4)), rng.integers(0, 2, 30)
    model = xpann.Sequential([layers.Dense(1, activation="sigmoid")], input_dim=4, seed=0, dtype="float64")
    model.compile("sgd", "binary_crossentropy")
    twin = xpann.Sequential([layers.Dense(1, activation="sigmoid")], input_dim=4, seed=0, dtype="float64")
    twin.compile("sgd", "binary_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, class_weight={1: 4.0})
    twin.fit(x, y, epochs=1, verbose=0, sample_weight=numpy.where(y == 1, 4.0, 1.0))
    for got, want in zip(model.get_weights(), twin.get_weights()):
        numpy.testing.assert_array_equal(got, want)
    regression = xpann.Sequential([layers.Dense(1)], input_dim=4, seed=0)
    regression.compile("sgd", "mse")
    with pytest.raises(ValueError, match="class targets"):
        regression.fit(x, rng.standard_normal(30), verbose=0, class_weight={0: 1.0})


def test_initial_epoch_numbers_the_epochs_and_runs_the_rest():
    x, y = blobs()
    model = classifier()
    seen = []

    class Epochs(xpann.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[Epochs()])
    assert seen == [3, 4] and len(history.history["loss"]) == 2
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(x, y, epochs=2, initial_epoch=3, verbose=0)


def test_kernel_regularizers_add_their_penalty_and_gradient():
    x, y = blobs(rows=10)
    model = xpann.Sequential([layers.Dense(3, activation="softmax", kernel_regularizer=xpann.regularizers.L1L2(
        l1=0.01, l2=0.1))], input_dim=4, seed=0, dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    plain = xpann.Sequential([layers.Dense(3, activation="softmax")], input_dim=4, seed=0, dtype="float64")
    plain.compile("sgd", "sparse_categorical_crossentropy")
    kernel = model.get_weights()[0]
    penalty = 0.01 * numpy.abs(kernel).sum() + 0.1 * (kernel ** 2).sum()
    loss, grads = model.compute_gradients(x, y)
    plain_loss, plain_grads = plain.compute_gradients(x, y)
    assert loss == pytest.approx(plain_loss + penalty, rel=1e-12)
    numpy.testing.assert_allclose(grads[0], plain_grads[0] + 0.01 * numpy.sign(kernel) + 0.2 * kernel, rtol=1e-12)
    assert model.evaluate(x, y)["loss"] == pytest.approx(plain.evaluate(x, y)["loss"] + penalty, rel=1e-12)
    config = xpann.layers.serialize(model.layers[0])
    assert xpann.layers.deserialize(config).kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.1}
    assert xpann.layers.Dense(2, kernel_regularizer="l2").kernel_regularizer.l2 == 0.01
    with pytest.raises(ValueError, match="valid names are l1, l1_l2, l2"):
        xpann.layers.Dense(2, kernel_regularizer="l3")
