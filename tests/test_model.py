"""Sequential as a user runs it: building, compiling, fitting, evaluating, predicting, weights,
seeds and dtypes, dropout, and the kinds of input it accepts."""

import re
import sys

import numpy
import pytest

import xpann
from conftest import assert_backends_agree, assert_weights_equal
from xpann.layers import Dense, Dropout


def blobs(n=120, features=4, classes=3, seed=0, dtype="float64"):
    """Well separated Gaussian blobs: x (n, features), integer labels y (n,)."""
    rng = numpy.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(size=(n, features))
    return x.astype(dtype), y


def classifier(input_dim=4, seed=0, dropout=0.0, **options):
    layers = [Dense(16, activation="relu", kernel_initializer="he_normal")]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(3, activation="softmax"))
    return xpann.Sequential(layers, input_dim=input_dim, seed=seed, **options)


def compiled(model, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=("accuracy",)):
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return model


# ----- construction ---------------------------------------------------------------------------


def test_input_dim_makes_the_weights_at_once():
    model = classifier(input_dim=4)
    assert model.built
    assert [w.shape for w in model.get_weights()] == [(4, 16), (16,), (16, 3), (3,)]
    assert model.count_params() == 4 * 16 + 16 + 16 * 3 + 3
    assert model.input_dim == 4 and model.output_dim == 3


def test_without_input_dim_the_weights_come_at_the_first_fit():
    model = compiled(classifier(input_dim=None))
    assert not model.built
    with pytest.raises(ValueError, match="no weights yet"):
        model.get_weights()
    x, y = blobs(features=5)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built
    assert [w.shape for w in model.get_weights()] == [(5, 16), (16,), (16, 3), (3,)]


def test_lazy_and_eager_building_start_from_the_same_weights():
    x, y = blobs()
    eager = classifier(input_dim=4, seed=3)
    lazy = compiled(classifier(input_dim=None, seed=3))
    lazy.fit(x, y, epochs=0, verbose=0)
    assert_weights_equal(eager.get_weights(), lazy.get_weights())


def test_dense_computes_activation_of_x_kernel_plus_bias():
    model = xpann.Sequential([Dense(5, activation="tanh"), Dense(2)], input_dim=3, seed=1, dtype="float64")
    x, _ = blobs(n=7, features=3)
    k1, b1, k2, b2 = model.get_weights()
    expected = numpy.tanh(x @ k1 + b1) @ k2 + b2
    numpy.testing.assert_allclose(model.predict(x), expected, rtol=1e-12, atol=1e-12)


def test_layers_can_be_added_before_the_build_only():
    model = xpann.Sequential(seed=0)
    model.add(Dense(4, activation="relu"))
    model.add(Dense(1))
    model.build(2)
    assert [w.shape for w in model.get_weights()] == [(2, 4), (4,), (4, 1), (1,)]
    with pytest.raises(ValueError, match="after the model is built"):
        model.add(Dense(1))


# ----- compile, fit, evaluate -----------------------------------------------------------------


def test_compile_with_names_and_with_objects_train_alike():
    x, y = blobs()
    by_name = compiled(classifier(), "adam", "sparse_categorical_crossentropy")
    by_object = compiled(classifier(), xpann.optimizers.Adam(), xpann.losses.SparseCategoricalCrossentropy())
    first = by_name.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    second = by_object.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    assert first == second
    assert_weights_equal(by_name.get_weights(), by_object.get_weights())


def test_fit_returns_a_history_with_one_float_per_epoch():
    x, y = blobs()
    model = compiled(classifier())
    history = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0)
    assert history is model.history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for values in history.history.values():
        assert len(values) == 4
        assert all(type(value) is float for value in values)
    assert history.epoch == [0, 1, 2, 3]
    assert 0.0 <= min(history.history["val_accuracy"]) <= max(history.history["val_accuracy"]) <= 1.0


def test_fit_prints_one_line_per_epoch_with_verbose(capsys):
    x, y = blobs(n=40)
    compiled(classifier()).fit(x, y, epochs=2, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 2 and "loss" in lines[0] and "accuracy" in lines[0]


def test_verbose_1_off_a_terminal_prints_one_exact_line_per_epoch(capsys):
    """stdout is not a terminal under capsys: no bar, one line an epoch, "Epoch e/E - 0.01s - "
    then every log in order, each with 4 decimals. From zero weights the first epoch's
    (full-batch) loss is ln 3 and all three probabilities tie, so the accuracy is the share of
    class 0 (argmax takes the first); the validation numbers follow one SGD step (float64 NumPy)."""
    x, _ = blobs(n=40)
    y = numpy.array([0] * 6 + [1] * 12 + [2] * 12 + [0, 1, 2, 0, 1, 2, 0, 1, 2, 2])  # the last 10 validate
    model = xpann.Sequential([Dense(3, activation="softmax")], input_dim=4, seed=0, dtype="float64")
    compiled(model, optimizer=xpann.optimizers.SGD(learning_rate=0.05))
    model.set_weights([numpy.zeros((4, 3)), numpy.zeros(3)])
    assert not sys.stdout.isatty()
    history = model.fit(x, y, epochs=3, batch_size=None, validation_split=0.25, verbose=1).history
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    pattern = re.compile(r"Epoch (\d+)/3 - \d+\.\d\ds - (.*)")
    for epoch, line in enumerate(lines):
        match = pattern.fullmatch(line)
        assert match and int(match.group(1)) == epoch + 1, line
        expected = (f"loss: {history['loss'][epoch]:.4f} - accuracy: {history['accuracy'][epoch]:.4f} - "
                    f"val_loss: {history['val_loss'][epoch]:.4f} - val_accuracy: {history['val_accuracy'][epoch]:.4f}")
        assert match.group(2) == expected
    # one step from zero weights: W = -lr x^T (1/3 - onehot) / n, b likewise
    head, tail = slice(0, 30), slice(30, 40)
    error = 1 / 3 - numpy.eye(3)[y[head]]
    kernel, bias = -0.05 * x[head].T @ error / 30, -0.05 * error.mean(axis=0)
    logits = x[tail] @ kernel + bias
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= numpy.log(numpy.exp(log_p).sum(axis=1, keepdims=True))
    val_loss = -log_p[numpy.arange(10), y[tail]].mean()
    val_accuracy = numpy.mean(log_p.argmax(axis=1) == y[tail])
    assert lines[0].endswith(f" - loss: 1.0986 - accuracy: 0.2000 - val_loss: {val_loss:.4f} - "
                             f"val_accuracy: {val_accuracy:.4f}"), (lines[0], val_loss, val_accuracy)


def test_fit_is_quiet_with_verbose_0(capsys):
    x, y = blobs(n=40)
    compiled(classifier()).fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_returns_a_dict_of_floats_matching_the_predictions():
    x, y = blobs()
    model = compiled(classifier(dtype="float64"), metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    results = model.evaluate(x, y)
    assert set(results) == {"loss", "accuracy"}
    assert all(type(value) is float for value in results.values())
    probabilities = model.predict(x)
    expected_loss = -numpy.mean(numpy.log(probabilities[numpy.arange(len(y)), y]))
    assert results["loss"] == pytest.approx(expected_loss, rel=1e-9)
    assert results["accuracy"] == pytest.approx(numpy.mean(probabilities.argmax(axis=1) == y))


def test_evaluate_does_not_depend_on_the_batch_size():
    x, y = blobs(n=50)
    model = compiled(classifier(dtype="float64"))
    whole = model.evaluate(x, y)
    batched = model.evaluate(x, y, batch_size=7)
    assert batched["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    assert batched["accuracy"] == whole["accuracy"]


def test_regression_metrics_are_reported():
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ numpy.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=64)
    model = xpann.Sequential([Dense(1)], input_dim=3, seed=0, dtype="float64")
    model.compile("adam", "mse", metrics=["mae", "mse", "rmse", "r2"])
    results = model.evaluate(x, y)
    prediction = model.predict(x)[:, 0]
    error = prediction - y
    assert results["mse"] == pytest.approx(numpy.mean(error**2), rel=1e-9)
    assert results["loss"] == pytest.approx(results["mse"], rel=1e-9)
    assert results["mae"] == pytest.approx(numpy.mean(numpy.abs(error)), rel=1e-9)
    assert results["rmse"] == pytest.approx(numpy.sqrt(numpy.mean(error**2)), rel=1e-9)
    r2 = 1 - numpy.sum(error**2) / numpy.sum((y - y.mean()) ** 2)
    assert results["r2"] == pytest.approx(r2, rel=1e-9)


# ----- predict --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_returns_a_host_numpy_array(backend, dtype):
    x, _ = blobs(n=30)
    model = classifier(dtype=dtype, backend=backend.name)
    assert model.backend.name == backend.name
    prediction = model.predict(x)
    assert type(prediction) is numpy.ndarray
    assert prediction.shape == (30, 3)
    assert prediction.dtype == numpy.dtype(dtype)
    numpy.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_in_batches_equals_predict_at_once():
    x, _ = blobs(n=50)
    model = classifier(dtype="float64")
    numpy.testing.assert_allclose(model.predict(x, batch_size=8), model.predict(x), rtol=1e-13, atol=1e-15)


def test_predict_with_one_output_keeps_a_column():
    model = xpann.Sequential([Dense(1)], input_dim=2, seed=0)
    assert model.predict(numpy.ones((5, 2))).shape == (5, 1)


# ----- train_on_batch -------------------------------------------------------------------------


def test_train_on_batch_returns_the_loss_before_the_update_and_changes_the_weights():
    x, y = blobs(n=40)
    model = compiled(classifier(dtype="float64"), xpann.optimizers.SGD(learning_rate=0.1))
    before = model.get_weights()
    loss_before = model.evaluate(x, y)["loss"]
    returned = model.train_on_batch(x, y)
    assert type(returned) is float
    assert returned == pytest.approx(loss_before, rel=1e-12)
    after = model.get_weights()
    assert all(not numpy.array_equal(a, b) for a, b in zip(before, after))
    assert model.evaluate(x, y)["loss"] < loss_before
    current = model.evaluate(x, y)["loss"]
    assert model.train_on_batch(x, y) == pytest.approx(current, rel=1e-12)


def test_train_on_batch_is_one_sgd_step():
    x, y = blobs(n=40)
    model = compiled(classifier(dtype="float64"), xpann.optimizers.SGD(learning_rate=0.1))
    weights = model.get_weights()
    _, gradients = model.compute_gradients(x, y)
    model.train_on_batch(x, y)
    for start, gradient, end in zip(weights, gradients, model.get_weights()):
        numpy.testing.assert_allclose(end, start - 0.1 * gradient, rtol=1e-12, atol=1e-14)


# ----- weights --------------------------------------------------------------------------------


def test_get_weights_layout_is_kernel_then_bias_per_dense_layer():
    model = xpann.Sequential(
        [Dense(5, activation="relu"), Dropout(0.5), Dense(3, use_bias=False), Dense(2)],
        input_dim=4, seed=0,
    )
    assert [w.shape for w in model.get_weights()] == [(4, 5), (5,), (5, 3), (3, 2), (2,)]
    assert all(type(w) is numpy.ndarray and w.dtype == numpy.float32 for w in model.get_weights())
    numpy.testing.assert_array_equal(model.get_weights()[1], 0.0)  # bias_initializer="zeros"


def test_get_weights_returns_copies():
    model = classifier()
    weights = model.get_weights()
    weights[0][...] = 123.0
    assert not numpy.any(model.get_weights()[0] == 123.0)


def test_set_weights_round_trip_changes_the_predictions():
    x, _ = blobs(n=10)
    source, target = classifier(seed=1), classifier(seed=2)
    assert not numpy.allclose(source.predict(x), target.predict(x))
    target.set_weights(source.get_weights())
    assert_weights_equal(target.get_weights(), source.get_weights())
    numpy.testing.assert_array_equal(target.predict(x), source.predict(x))


def test_set_weights_accepts_lists_and_other_dtypes():
    model = xpann.Sequential([Dense(2)], input_dim=2, seed=0)
    model.set_weights([[[1, 2], [3, 4]], numpy.array([0.5, -0.5], dtype=numpy.float64)])
    numpy.testing.assert_array_equal(model.predict([[1.0, 1.0]]), [[4.5, 5.5]])
    assert model.get_weights()[0].dtype == numpy.float32


def test_set_weights_with_a_wrong_shape_names_the_layer():
    model = xpann.Sequential([Dense(8, name="hidden"), Dense(3)], input_dim=4, seed=0)
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"'hidden'.*\(4, 8\)"):
        model.set_weights([numpy.zeros((5, 8))] + weights[1:])
    with pytest.raises(ValueError, match=r"dense_2.*bias.*\(3,\)"):
        model.set_weights(weights[:3] + [numpy.zeros(4)])
    with pytest.raises(ValueError, match="needs 4 arrays"):
        model.set_weights(weights[:3])
    assert_weights_equal(model.get_weights(), weights)


# ----- summary --------------------------------------------------------------------------------


def test_summary_prints_the_layers_and_the_parameter_count(capsys):
    model = xpann.Sequential([Dense(16, activation="relu"), Dropout(0.2), Dense(3, activation="softmax")],
                             input_dim=4, seed=0)
    model.summary()
    out = capsys.readouterr().out
    for text in ("dense_1", "relu", "dropout_2", "dense_3", "softmax", str(model.count_params())):
        assert text in out


def test_summary_of_an_unbuilt_model_prints_too(capsys):
    xpann.Sequential([Dense(3)]).summary()
    assert "dense_1" in capsys.readouterr().out


# ----- seeds and dtypes -----------------------------------------------------------------------


def test_the_seed_fixes_the_initial_weights():
    assert_weights_equal(classifier(seed=7).get_weights(), classifier(seed=7).get_weights())
    assert not numpy.array_equal(classifier(seed=7).get_weights()[0], classifier(seed=8).get_weights()[0])
    assert not numpy.array_equal(classifier(seed=None).get_weights()[0], classifier(seed=None).get_weights()[0])


def test_the_seed_fixes_the_whole_training_run():
    x, y = blobs()
    runs = []
    for _ in range(2):
        model = compiled(classifier(seed=5, dropout=0.3))
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        runs.append((history.history, model.get_weights()))
    assert runs[0][0] == runs[1][0]
    assert_weights_equal(runs[0][1], runs[1][1])


def test_the_same_seed_gives_the_same_start_on_every_backend():
    def initial_weights(backend):
        return classifier(seed=11, backend=backend).get_weights()

    assert_backends_agree(initial_weights)


def test_the_same_seed_trains_alike_on_every_backend():
    x, y = blobs(n=64)

    def trained(backend):
        model = compiled(classifier(seed=2, backend=backend, dtype="float64"))
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return model.get_weights() + [model.predict(x)]

    assert_backends_agree(trained, "float64", rtol=1e-7, atol=1e-9)


def test_float32_is_the_default_and_float64_on_request():
    x, y = blobs(n=20)
    default = compiled(classifier())
    assert default.dtype == "float32"
    assert default.predict(x).dtype == numpy.float32
    assert {w.dtype for w in default.get_weights()} == {numpy.dtype(numpy.float32)}
    double = compiled(classifier(dtype="float64"))
    double.fit(x, y, epochs=1, verbose=0)
    assert double.predict(x).dtype == numpy.float64
    assert {w.dtype for w in double.get_weights()} == {numpy.dtype(numpy.float64)}


# ----- dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_dropout_is_inverted_and_scales_the_kept_units(backend, rate):
    model = xpann.Sequential([Dropout(rate)], input_dim=4000, seed=0)
    node = model.plan.nodes[0]
    ones = backend.asarray(numpy.ones((50, 4000), dtype=numpy.float32))
    out = backend.to_numpy(node.layer.forward(node, ones, True)[0])
    assert out.dtype == numpy.float32
    kept = out != 0
    numpy.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
    assert kept.mean() == pytest.approx(1 - rate, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.02)


def test_dropout_is_the_identity_at_inference(backend):
    model = xpann.Sequential([Dropout(0.5)], input_dim=10, seed=0)
    x, _ = blobs(n=20, features=10, dtype="float32")
    numpy.testing.assert_array_equal(model.predict(x), x)
    node = model.plan.nodes[0]
    numpy.testing.assert_array_equal(backend.to_numpy(node.layer.forward(node, backend.asarray(x), False)[0]), x)


def test_dropout_acts_only_in_training():
    x, y = blobs(n=60)
    with_dropout = compiled(classifier(seed=4, dropout=0.5, dtype="float64"))
    without = compiled(classifier(seed=4, dtype="float64"))
    without.set_weights(with_dropout.get_weights())
    numpy.testing.assert_array_equal(with_dropout.predict(x), without.predict(x))
    assert with_dropout.evaluate(x, y) == without.evaluate(x, y)
    loss_dropout, grads_dropout = with_dropout.compute_gradients(x, y)
    loss_plain, grads_plain = without.compute_gradients(x, y)
    assert loss_dropout != pytest.approx(loss_plain)
    assert not numpy.allclose(grads_dropout[0], grads_plain[0])


def test_dropout_masks_follow_the_seed():
    x, y = blobs(n=60)
    start = classifier(seed=9).get_weights()

    def full_batch_losses(seed):
        model = compiled(classifier(seed=seed, dropout=0.5, dtype="float64"))
        model.set_weights(start)  # the same start, so only the dropout masks can differ
        return model.fit(x, y, epochs=3, batch_size=None, shuffle=False, verbose=0).history["loss"]

    assert full_batch_losses(1) == full_batch_losses(1)
    assert full_batch_losses(1) != full_batch_losses(2)


# ----- kinds of input -------------------------------------------------------------------------


def test_lists_work_like_numpy_arrays():
    x, y = blobs(n=40)
    arrays = compiled(classifier(dtype="float64"))
    lists = compiled(classifier(dtype="float64"))
    history_arrays = arrays.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    history_lists = lists.fit(x.tolist(), y.tolist(), epochs=2, batch_size=8, verbose=0).history
    assert history_arrays == history_lists
    numpy.testing.assert_array_equal(lists.predict(x.tolist()), arrays.predict(x))
    assert lists.evaluate(x.tolist(), y.tolist()) == arrays.evaluate(x, y)
    assert lists.train_on_batch(x.tolist(), y.tolist()) == arrays.train_on_batch(x, y)


def test_other_numeric_dtypes_and_data_frames_work():
    pandas = pytest.importorskip("pandas")
    x, y = blobs(n=40)
    reference = compiled(classifier(dtype="float64"))
    expected = reference.predict(x)
    numpy.testing.assert_allclose(reference.predict(x.astype(numpy.float32)), expected, rtol=1e-6)
    frame = pandas.DataFrame(x, columns=list("abcd"))
    numpy.testing.assert_array_equal(reference.predict(frame), expected)
    assert reference.evaluate(frame, pandas.Series(y)) == reference.evaluate(x, y)
    assert reference.evaluate(x, y.astype(numpy.float64)) == reference.evaluate(x, y)
    assert reference.evaluate(x, y.reshape(-1, 1)) == reference.evaluate(x, y)
    integers = numpy.arange(8).reshape(2, 4)
    numpy.testing.assert_allclose(reference.predict(integers), reference.predict(integers.astype(float)))


def test_arrays_of_the_model_backend_work(backend):
    x, y = blobs(n=40)
    host = compiled(classifier(dtype="float64", backend=backend.name))
    device = compiled(classifier(dtype="float64", backend=backend.name))
    xd, yd = backend.asarray(x), backend.asarray(y)
    assert backend.is_array(xd)
    history_host = host.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    history_device = device.fit(xd, yd, epochs=2, batch_size=8, validation_data=(xd, yd), verbose=0).history
    numpy.testing.assert_allclose(history_device["loss"], history_host["loss"], rtol=1e-12)
    prediction = device.predict(xd)
    assert type(prediction) is numpy.ndarray
    numpy.testing.assert_allclose(prediction, host.predict(x), rtol=1e-12, atol=1e-14)
    assert device.evaluate(xd, yd) == pytest.approx(host.evaluate(x, y), rel=1e-12)
    numpy.testing.assert_array_equal(backend.to_numpy(xd), x)  # the caller's array is left alone


def test_cupy_arrays_work_on_a_numpy_model(cupy_backend):
    x, y = blobs(n=30)
    model = compiled(classifier(dtype="float64", backend="numpy"))
    expected = model.predict(x)
    numpy.testing.assert_array_equal(model.predict(cupy_backend.asarray(x)), expected)
    assert model.evaluate(cupy_backend.asarray(x), cupy_backend.asarray(y)) == model.evaluate(x, y)
    model.fit(cupy_backend.asarray(x), cupy_backend.asarray(y), epochs=1, verbose=0)


def test_numpy_arrays_work_on_a_cupy_model(cupy_backend):
    x, y = blobs(n=30)
    model = compiled(classifier(dtype="float64", backend="cupy"))
    prediction = model.predict(x)
    assert type(prediction) is numpy.ndarray
    model.fit(x, y, epochs=1, verbose=0)


def test_the_model_keeps_its_pinned_backend():
    with xpann.use_backend("numpy"):
        model = classifier(backend="numpy")
    assert model.backend.name == "numpy"
