"""BatchNormalization, LayerNormalization and CategoryEmbedding against float64 references of
torch's formulas, their gradients by finite differences, NumPy-vs-CuPy parity, state that no
optimizer touches, and save/load of that state."""

import numpy
import pytest

import reference
import xpann
from conftest import assert_backends_agree, finite_differences
from xpann import layers


def node_of(model, index=0):
    node = model.plan.nodes[index]
    node.need_input_grad = True  # a first layer need not return dL/dx; here we check it
    return node


def data(rows=7, width=5, seed=0):
    return numpy.random.default_rng(seed).standard_normal((rows, width)) * 2 + 0.5


def randomize(model, seed=1):
    """Trainable tensors away from their initial ones and zeros, so each term of a gradient shows."""
    rng = numpy.random.default_rng(seed)
    model.set_weights([w + rng.standard_normal(w.shape) * 0.3 if "moving" not in name else w
                       for name, w in model.named_weights().items()])


# ----- BatchNormalization ----------------------------------------------------------------------


def test_batch_normalization_trains_on_batch_statistics_and_updates_the_moving_ones(backend):
    model = xpann.Sequential([layers.BatchNormalization(momentum=0.3, epsilon=1e-3)], input_dim=5, seed=0,
                             dtype="float64", backend=backend.name)
    randomize(model)
    gamma, beta, moving_mean, moving_var = model.get_weights()
    x = data()
    node = node_of(model)
    y, _ = node.layer.forward(node, backend.asarray(x), True)
    want, want_mean, want_var = reference.batch_norm_train(x, gamma, beta, moving_mean, moving_var, 0.3, 1e-3)
    numpy.testing.assert_allclose(backend.to_numpy(y), want, rtol=1e-12, atol=1e-12)
    _, _, got_mean, got_var = model.get_weights()
    numpy.testing.assert_allclose(got_mean, want_mean, rtol=1e-12)
    numpy.testing.assert_allclose(got_var, want_var, rtol=1e-12)  # the unbiased variance
    numpy.testing.assert_allclose(model.predict(x), reference.batch_norm_inference(x, gamma, beta, got_mean, got_var,
                                                                                   1e-3), rtol=1e-12)


def test_batch_normalization_weights_come_in_keras_order_and_the_state_is_apart(backend):
    model = xpann.Sequential([layers.Dense(4), layers.BatchNormalization()], input_dim=3, seed=0,
                             backend=backend.name)
    assert list(model.named_weights()) == ["dense_1/kernel", "dense_1/bias", "batch_normalization_2/gamma",
                                           "batch_normalization_2/beta", "batch_normalization_2/moving_mean",
                                           "batch_normalization_2/moving_variance"]
    gamma, beta, mean, var = model.get_weights()[2:]
    numpy.testing.assert_array_equal(gamma, 1)
    numpy.testing.assert_array_equal(beta, 0)
    numpy.testing.assert_array_equal(mean, 0)
    numpy.testing.assert_array_equal(var, 1)
    assert model.count_params() == 3 * 4 + 4 + 4 + 4  # the moving statistics are not trainable
    assert model.parameters.size == model.count_params()


def test_no_optimizer_and_no_weight_decay_touch_the_moving_statistics():
    x = data(rows=32, width=3)
    y = x @ numpy.array([[1.0], [-2.0], [0.5]])
    model = xpann.Sequential([layers.BatchNormalization(momentum=0.5), layers.Dense(1)], input_dim=3, seed=0,
                             dtype="float64")
    model.compile(optimizer=xpann.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5), loss="mse")
    model.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0)
    mean, var = numpy.zeros(3), numpy.ones(3)
    for _ in range(3):  # one full batch per epoch: the moving statistics follow the formula alone
        _, mean, var = reference.batch_norm_train(x, 1, 0, mean, var, momentum=0.5)
    weights = model.named_weights()
    numpy.testing.assert_allclose(weights["batch_normalization_1/moving_mean"], mean, rtol=1e-12)
    numpy.testing.assert_allclose(weights["batch_normalization_1/moving_variance"], var, rtol=1e-12)
    assert model.optimizer.slots["m"].size == model.count_params()


@pytest.mark.parametrize("layer", [layers.BatchNormalization, layers.LayerNormalization])
def test_normalization_gradients_by_finite_differences(backend, layer):
    model = xpann.Sequential([layer()], input_dim=5, seed=0, dtype="float64", backend=backend.name)
    randomize(model)
    check_gradients(backend, model, backend.asarray(data()))


def check_gradients(backend, model, x, codes=()):
    """backprop of sum(y * w) against finite differences, for the parameters and the input (zero for
    the ``codes`` columns, which are not differentiable inputs)."""
    w = backend.asarray(numpy.random.default_rng(3).standard_normal((x.shape[0], model.output_dim)))
    node = node_of(model)
    _, backprop = node.layer.forward(node, x, True)
    dx = backend.to_numpy(backprop(w)).copy()
    grads = backend.to_numpy(model.parameters.grad).copy()

    def objective():
        return float((node.layer.forward(node, x, True)[0] * w).sum())

    numpy.testing.assert_allclose(grads, finite_differences(objective, model.parameters.data), rtol=1e-6, atol=1e-8)
    numeric = finite_differences(objective, x)
    numeric[:, list(codes)] = 0
    numpy.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-7)


def test_layer_normalization_matches_the_reference(backend):
    model = xpann.Sequential([layers.LayerNormalization(epsilon=1e-3)], input_dim=5, seed=0, dtype="float64",
                             backend=backend.name)
    randomize(model)
    gamma, beta = model.get_weights()
    x = data()
    numpy.testing.assert_allclose(model.predict(x), reference.layer_norm(x, gamma, beta, 1e-3), rtol=1e-12)
    node = node_of(model)
    y, _ = node.layer.forward(node, backend.asarray(x), True)
    numpy.testing.assert_allclose(backend.to_numpy(y), reference.layer_norm(x, gamma, beta, 1e-3), rtol=1e-12)


def test_a_training_batch_of_one_leaves_the_moving_statistics():
    model = xpann.Sequential([layers.BatchNormalization()], input_dim=3, seed=0)
    node = node_of(model)
    y, _ = node.layer.forward(node, numpy.ones((1, 3), dtype="float32"), True)
    numpy.testing.assert_array_equal(y, 0)
    numpy.testing.assert_array_equal(model.get_weights()[2:], [numpy.zeros(3), numpy.ones(3)])


# ----- CategoryEmbedding -----------------------------------------------------------------------


def coded(rows=9, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((rows, 5))
    x[:, 1] = rng.integers(0, 4, rows)
    x[:, 3] = rng.integers(0, 3, rows)
    return x


def test_category_embedding_puts_numeric_columns_first_then_each_embedding(backend):
    model = xpann.Sequential([layers.CategoryEmbedding([3, 1], [3, 4], [2, 5])], input_dim=5, seed=0,
                             dtype="float64", backend=backend.name)
    assert model.output_dim == 3 + 2 + 5
    first, second = model.get_weights()
    assert first.shape == (3, 2) and second.shape == (4, 5)
    assert numpy.isfinite(first).all() and numpy.unique(numpy.concatenate([first.ravel(), second.ravel()])).size == 26
    x = coded()
    numpy.testing.assert_array_equal(model.predict(x), reference.category_embedding(x, [3, 1], [first, second]))


def test_category_embedding_tables_start_as_standard_normal_draws_like_torch():
    """N(0, 1), as torch.nn.Embedding: over n = 100,000 draws the sample mean is within 5 standard
    errors (1/sqrt(n)) of 0 and the sample std within 5 (1/sqrt(2n)) of 1; the tails are a
    normal's (0.27% beyond 3, some beyond 4), so not a uniform of std 1."""
    model = xpann.Sequential([layers.CategoryEmbedding([0, 1], [400, 600], [100, 100])], input_dim=2, seed=0,
                             dtype="float64", backend="numpy")
    draws = numpy.concatenate([table.ravel() for table in model.get_weights()])
    n = draws.size
    assert n == 100_000
    assert abs(draws.mean()) < 5 / n**0.5
    assert abs(draws.std(ddof=1) - 1) < 5 / (2 * n) ** 0.5
    beyond = numpy.mean(numpy.abs(draws) > 3)
    assert abs(beyond - 0.0027) < 5 * (0.0027 / n) ** 0.5
    assert numpy.abs(draws).max() > 4


def test_category_embedding_gradients_add_up_over_repeated_codes(backend):
    model = xpann.Sequential([layers.CategoryEmbedding([1, 3], [4, 3], [2, 3])], input_dim=5, seed=0,
                             dtype="float64", backend=backend.name)
    check_gradients(backend, model, backend.asarray(coded()), codes=[1, 3])


def test_a_code_outside_its_range_is_refused_before_training():
    model = xpann.Sequential([layers.CategoryEmbedding([1], [4], [2]), layers.Dense(1)], input_dim=3, seed=0)
    model.compile("sgd", "mse")
    before = model.get_weights()
    for bad in (4.0, -1.0, 1.5):
        x = numpy.zeros((5, 3), dtype="float32")
        x[2, 1] = bad
        with pytest.raises(ValueError, match="input column 1 must hold whole-number codes 0 .. 3"):
            model.fit(x, numpy.zeros(5), verbose=0)
    for got, want in zip(model.get_weights(), before):
        numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arguments, words", [
    (([0, 0], [2, 2], [1, 1]), "must not repeat"),
    (([0], [2, 3], [1]), "one entry per coded column"),
    (([], [], []), "at least one coded column"),
    (([0], [0], [1]), "input_dims must be a whole number >= 1"),
    (("0", [2], [1]), "columns must be a list"),
])
def test_category_embedding_arguments_are_checked_when_built(arguments, words):
    with pytest.raises(ValueError, match=words):
        layers.CategoryEmbedding(*arguments)


def test_an_embedding_column_beyond_the_input_is_an_error():
    with pytest.raises(ValueError, match="column 7 is not among the input's 3 columns"):
        xpann.Sequential([layers.CategoryEmbedding([7], [2], [2])], input_dim=3)


# ----- whole models: training, both backends, save and load ----------------------------------


def tabular_model(backend_name="numpy", dtype="float32"):
    model = xpann.Sequential([layers.CategoryEmbedding([1, 3], [4, 3], [2, 2]), layers.Dense(8),
                              layers.BatchNormalization(), layers.Activation("relu"), layers.LayerNormalization(),
                              layers.Dense(3, activation="softmax")], seed=0, backend=backend_name, dtype=dtype)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_of_the_new_layers_trains_checks_its_gradients_and_saves_its_state(tmp_path):
    x, y = coded(rows=60).astype("float32"), numpy.random.default_rng(1).integers(0, 3, 60)
    model = tabular_model()
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    worst = xpann.diagnostics.gradient_check(model, x[:12].astype("float64"), y[:12])
    assert max(worst.values()) < 1e-4, worst  # dense_2's bias gradient is ~0 before a batch norm
    model.save(tmp_path / "m.npz")
    with numpy.load(tmp_path / "m.npz") as archive:
        assert "tensor:batch_normalization_3/moving_variance" in archive.files
    loaded = xpann.load_model(tmp_path / "m.npz")
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for (name, got), want in zip(loaded.named_weights().items(), model.get_weights()):
        numpy.testing.assert_array_equal(got, want, err_msg=name)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(got, want)


def test_the_new_layers_agree_across_backends():
    x, y = coded(rows=40).astype("float32"), numpy.random.default_rng(1).integers(0, 3, 40)

    def run(backend):
        model = tabular_model(backend.name)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return [backend.asarray(w) for w in model.get_weights()] + [backend.asarray(model.predict(x))]

    assert_backends_agree(run, rtol=1e-4, atol=1e-5)


def test_summary_and_diagnostics_see_the_new_layers():
    model = tabular_model()
    model.build(5)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "batch_normalization_3" in text and "16 + 16 state" in text and "non-trainable" in text
    probes = xpann.diagnostics._probes(model)
    dense = next(probe for probe in probes if probe.name == "dense_2")
    assert dense.activation == "relu" and dense.source == 3  # through the batch normalization
