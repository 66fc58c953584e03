"""The training loop: full-batch, SGD and mini-batch descent, shuffling, validation, and
convergence on learnable problems for every optimizer and loss."""

import math

import numpy
import pytest

import xpann
from conftest import assert_weights_equal
from xpann.callbacks import Callback
from xpann.layers import Dense


def blobs(n=120, features=4, classes=3, seed=0, scale=4.0):
    rng = numpy.random.default_rng(seed)
    centers = rng.normal(scale=scale, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.normal(size=(n, features)), y


def linear_data(n=200, features=3, seed=0, noise=0.05):
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y = x @ numpy.linspace(-1.5, 2.0, features) + 0.5 + noise * rng.normal(size=n)
    return x, y


def classifier(seed=0, dtype="float64", input_dim=4, classes=3, **options):
    return xpann.Sequential([Dense(8, activation="tanh"), Dense(classes, activation="softmax")],
                            input_dim=input_dim, seed=seed, dtype=dtype, **options)


def sgd_classifier(seed=0, learning_rate=0.1):
    model = classifier(seed=seed)
    model.compile(xpann.optimizers.SGD(learning_rate=learning_rate), "sparse_categorical_crossentropy")
    return model


class StepCounter(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.steps = getattr(self, "steps", []) + [0]

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1


# ----- batching -------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_size_none_is_full_batch_gradient_descent(shuffle):
    x, y = blobs(n=50)
    fitted, manual = sgd_classifier(), sgd_classifier()
    counter = StepCounter()
    history = fitted.fit(x, y, epochs=4, batch_size=None, shuffle=shuffle, callbacks=[counter], verbose=0)
    losses = [manual.train_on_batch(x, y) for _ in range(4)]
    assert counter.steps == [1, 1, 1, 1]
    assert fitted.optimizer.iterations == 4
    # The full-batch gradient does not depend on the order of the samples: shuffling only
    # changes the rounding.
    assert_weights_equal(fitted.get_weights(), manual.get_weights(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(history.history["loss"], losses, rtol=1e-10)


def test_batch_size_one_is_sgd_with_one_step_per_sample():
    x, y = blobs(n=12)
    fitted, manual = sgd_classifier(), sgd_classifier()
    counter = StepCounter()
    history = fitted.fit(x, y, epochs=2, batch_size=1, shuffle=False, callbacks=[counter], verbose=0)
    losses = [[manual.train_on_batch(x[i:i + 1], y[i:i + 1]) for i in range(12)] for _ in range(2)]
    assert counter.steps == [12, 12]
    assert fitted.optimizer.iterations == 24
    assert_weights_equal(fitted.get_weights(), manual.get_weights(), rtol=1e-12, atol=1e-13)
    numpy.testing.assert_allclose(history.history["loss"], numpy.mean(losses, axis=1), rtol=1e-12)


def test_mini_batches_cover_the_data_in_order_with_a_short_last_batch():
    x, y = blobs(n=50)
    fitted, manual = sgd_classifier(), sgd_classifier()
    counter = StepCounter()
    history = fitted.fit(x, y, epochs=1, batch_size=16, shuffle=False, callbacks=[counter], verbose=0)
    losses, sizes = [], []
    for start in range(0, 50, 16):
        losses.append(manual.train_on_batch(x[start:start + 16], y[start:start + 16]))
        sizes.append(len(y[start:start + 16]))
    assert counter.steps == [4] and sizes == [16, 16, 16, 2]
    assert_weights_equal(fitted.get_weights(), manual.get_weights(), rtol=1e-12, atol=1e-13)
    # The epoch loss is the mean over samples of the per-batch losses (before each update).
    assert history.history["loss"][0] == pytest.approx(numpy.dot(losses, sizes) / 50, rel=1e-12)


def test_a_batch_larger_than_the_data_is_one_full_batch():
    x, y = blobs(n=20)
    counter = StepCounter()
    sgd_classifier().fit(x, y, epochs=2, batch_size=1000, callbacks=[counter], verbose=0)
    assert counter.steps == [1, 1]


def test_epochs_zero_trains_nothing():
    x, y = blobs(n=20)
    model = sgd_classifier()
    before = model.get_weights()
    history = model.fit(x, y, epochs=0, verbose=0)
    assert history.history == {} and history.epoch == []
    assert_weights_equal(model.get_weights(), before)


# ----- shuffling ------------------------------------------------------------------------------


def test_shuffling_follows_the_model_seed():
    x, y = blobs(n=60)

    def train(seed):
        model = sgd_classifier(seed=seed)
        model.set_weights(sgd_classifier(seed=0).get_weights())  # the same start for every seed
        history = model.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0)
        return history.history["loss"], model.get_weights()

    first_losses, first = train(1)
    again_losses, again = train(1)
    other_losses, other = train(2)
    assert first_losses == again_losses
    assert_weights_equal(first, again)
    assert first_losses != other_losses
    assert not numpy.allclose(first[0], other[0])


def test_without_shuffling_the_seed_does_not_matter_after_the_start():
    x, y = blobs(n=60)
    start = sgd_classifier(seed=0).get_weights()
    results = []
    for seed in (1, 2):
        model = sgd_classifier(seed=seed)
        model.set_weights(start)
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        results.append(model.get_weights())
    assert_weights_equal(*results)


def test_shuffling_changes_the_order_between_epochs():
    x, y = blobs(n=60)
    shuffled, ordered = sgd_classifier(), sgd_classifier()
    shuffled.fit(x, y, epochs=2, batch_size=8, shuffle=True, verbose=0)
    ordered.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert not numpy.allclose(shuffled.get_weights()[0], ordered.get_weights()[0])


# ----- validation -----------------------------------------------------------------------------


def test_validation_split_holds_out_the_last_samples_before_shuffling():
    x, y = blobs(n=80)
    split = 60  # validation_split=0.25 keeps the first 60 for training
    model = classifier(seed=3)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, shuffle=True, verbose=0)
    on_tail = model.evaluate(x[split:], y[split:])
    assert history.history["val_loss"][-1] == pytest.approx(on_tail["loss"], rel=1e-12)
    assert history.history["val_accuracy"][-1] == on_tail["accuracy"]
    # Training saw exactly the head: the same run on x[:60] alone gives the same weights.
    head_only = classifier(seed=3)
    head_only.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    head_history = head_only.fit(x[:split], y[:split], epochs=3, batch_size=16, shuffle=True, verbose=0)
    assert head_history.history["loss"] == history.history["loss"]
    assert_weights_equal(head_only.get_weights(), model.get_weights())


def test_validation_split_keeps_the_tail_even_when_it_is_one_class():
    x, y = blobs(n=40)
    order = numpy.argsort(y, kind="stable")
    x, y = x[order], y[order]  # sorted by class, like many CSVs
    model = classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    tail = model.evaluate(x[32:], y[32:])
    assert history.history["val_accuracy"][0] == tail["accuracy"]
    assert numpy.all(y[32:] == 2)


def test_validation_data_is_evaluated_after_each_epoch():
    x, y = blobs(n=80)
    xv, yv = blobs(n=30, seed=1)
    model = classifier()
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])

    class AfterEpoch(Callback):
        values = []

        def on_epoch_end(self, epoch, logs=None):
            self.values.append(self.model.evaluate(xv, yv))

    recorder = AfterEpoch()
    history = model.fit(x, y, epochs=3, validation_data=(xv, yv), callbacks=[recorder], verbose=0)
    numpy.testing.assert_allclose(history.history["val_loss"], [r["loss"] for r in recorder.values], rtol=1e-12)
    assert history.history["val_accuracy"] == [r["accuracy"] for r in recorder.values]
    assert len(history.history["loss"]) == 3


def test_validation_data_takes_precedence_over_validation_split():
    x, y = blobs(n=40)
    xv, yv = blobs(n=10, seed=5)
    model = classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, validation_split=0.5, validation_data=[xv, yv], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(xv, yv)["loss"], rel=1e-12)
    assert model.optimizer.iterations == math.ceil(40 / 32)


# ----- convergence ----------------------------------------------------------------------------


OPTIMIZERS = {
    "sgd_momentum": lambda: xpann.optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda: xpann.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: xpann.optimizers.Adam(learning_rate=0.01),
    "rmsprop": lambda: xpann.optimizers.RMSprop(learning_rate=0.01),
    "adagrad": lambda: xpann.optimizers.Adagrad(learning_rate=0.1),
    "adadelta": lambda: xpann.optimizers.Adadelta(learning_rate=1.0),
    "nadam": lambda: xpann.optimizers.Nadam(learning_rate=0.01),
    "adamw": lambda: xpann.optimizers.AdamW(learning_rate=0.01),
    "adam_schedule": lambda: xpann.optimizers.Adam(
        learning_rate=xpann.schedules.ExponentialDecay(0.02, decay_steps=50, decay_rate=0.5)),
    "sgd_clipnorm": lambda: xpann.optimizers.SGD(learning_rate=0.05, momentum=0.9, clipnorm=1.0),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_learns_a_separable_problem(name):
    rng = numpy.random.default_rng(1)
    y = rng.integers(0, 3, size=200)
    x = 3.0 * numpy.eye(4)[y] + rng.normal(size=(200, 4))  # about 97% separable
    model = xpann.Sequential([Dense(16, activation="relu"), Dense(3, activation="softmax")], seed=0)
    model.compile(OPTIMIZERS[name](), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.25
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x, y)["accuracy"] >= 0.93


def test_categorical_crossentropy_with_one_hot_targets():
    x, y = blobs(n=200, seed=2)
    model = xpann.Sequential([Dense(16, activation="relu"), Dense(3, activation="softmax")], seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.01), "categorical_crossentropy", metrics=["accuracy"])
    one_hot = numpy.eye(3)[y]
    model.fit(x, one_hot, epochs=20, batch_size=32, verbose=0)
    results = model.evaluate(x, one_hot)
    assert results["accuracy"] >= 0.9 and results["loss"] < 0.3


def test_binary_crossentropy_with_a_sigmoid_output():
    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(numpy.float64)
    model = xpann.Sequential([Dense(8, activation="tanh"), Dense(1, activation="sigmoid")], seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.02), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    results = model.evaluate(x, y)
    assert results["accuracy"] >= 0.93
    prediction = model.predict(x)
    assert prediction.shape == (200, 1) and prediction.min() >= 0 and prediction.max() <= 1


def test_binary_crossentropy_from_logits():
    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(numpy.int64)
    model = xpann.Sequential([Dense(8, activation="tanh"), Dense(1)], seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.02), xpann.losses.BinaryCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(x, y)["accuracy"] >= 0.93


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "rmse", "mean_squared_error"])
def test_regression_losses_fit_a_linear_target(loss):
    x, y = linear_data()
    model = xpann.Sequential([Dense(16, activation="relu"), Dense(1)], seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.02), loss, metrics=["mae", "r2"])
    history = model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    results = model.evaluate(x, y)
    assert results["r2"] > 0.97, (loss, results)
    assert results["mae"] < 0.35 * numpy.mean(numpy.abs(y - y.mean()))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_a_two_column_regression_target():
    x, y = linear_data()
    targets = numpy.stack([y, -2 * y], axis=1)
    model = xpann.Sequential([Dense(16, activation="relu"), Dense(2)], seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.02), "mse", metrics=["r2"])
    model.fit(x, targets, epochs=40, batch_size=32, verbose=0)
    assert model.predict(x).shape == (200, 2)
    assert model.evaluate(x, targets)["r2"] > 0.95


def test_iris_reaches_a_good_accuracy():
    datasets = getattr(xpann, "datasets", None)
    if datasets is None or not hasattr(datasets, "load"):
        pytest.skip("xpann.datasets.load is not available in this checkout")
    data = datasets.load("iris")
    x = (data.x - data.x.mean(axis=0)) / data.x.std(axis=0)
    order = numpy.random.default_rng(0).permutation(len(x))  # the CSV is sorted by class
    x, y = x[order], data.y[order]
    model = xpann.Sequential(
        [Dense(16, activation="relu", kernel_initializer="he_normal"), Dense(3, activation="softmax")],
        input_dim=4, seed=0,
    )
    model.compile(xpann.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=40, batch_size=16, validation_split=0.2, verbose=0)
    assert history.history["val_accuracy"][-1] >= 0.85
    assert model.evaluate(x, y)["accuracy"] >= 0.9


def test_an_activation_layer_after_dense_trains_like_dense_with_the_activation():
    x, y = blobs(n=60)
    fused = xpann.Sequential([Dense(8, activation="tanh"), Dense(3, activation="softmax")], input_dim=4, seed=0,
                             dtype="float64")
    split = xpann.Sequential([Dense(8, activation="tanh"), Dense(3), xpann.layers.Activation("softmax")],
                             input_dim=4, seed=0, dtype="float64")
    for model in (fused, split):
        model.compile(xpann.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy")
    first = fused.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
    second = split.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"]
    numpy.testing.assert_allclose(second, first, rtol=1e-12)
    assert_weights_equal(split.get_weights(), fused.get_weights(), rtol=1e-12, atol=1e-13)


def test_dense_layers_without_bias_train():
    x, y = linear_data(n=64)
    model = xpann.Sequential([Dense(8, activation="tanh", use_bias=False), Dense(1, use_bias=False)],
                             input_dim=3, seed=0)
    model.compile(xpann.optimizers.Adam(learning_rate=0.02), "mse")
    history = model.fit(x, y - 0.5, epochs=20, batch_size=16, verbose=0)
    assert [w.shape for w in model.get_weights()] == [(3, 8), (8, 1)]
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
