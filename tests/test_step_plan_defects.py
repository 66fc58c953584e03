"""Regression tests: CategoryEmbedding only as the first layer, optimizers defined in user code
found by name (compile and load_model), and named_weights in get_weights' order."""

import numpy
import pytest

import xpann
from xpann import layers, optimizers


@pytest.fixture
def rule_table():
    """The optimizers' name table, restored after the test (it is shared by the whole process)."""
    saved = dict(optimizers.OPTIMIZERS.classes)
    yield
    optimizers.OPTIMIZERS.classes.clear()
    optimizers.OPTIMIZERS.classes.update(saved)


def tabular(rows=24, seed=0):
    """Column 1 holds codes 0..2; columns 0 and 2 are numbers; two classes."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((rows, 3))
    x[:, 1] = rng.integers(0, 3, rows)
    return x, (x[:, 0] + x[:, 1] > 1).astype("int64")


# ----- CategoryEmbedding is a first layer -------------------------------------------------------


def test_category_embedding_after_another_layer_is_refused_when_listed():
    embedding = layers.CategoryEmbedding([0], [3], [2])
    with pytest.raises(ValueError, match="CategoryEmbedding must be the first layer .*position 2"):
        xpann.Sequential([layers.Dense(4), embedding], input_dim=3)
    assert embedding.model is None and embedding.input_dim is None


def test_category_embedding_after_another_layer_is_refused_when_added():
    model = xpann.Sequential([layers.Dense(4), layers.Dense(3)])
    with pytest.raises(ValueError, match="CategoryEmbedding must be the first layer .*position 3"):
        model.add(layers.CategoryEmbedding([0], [3], [2]))
    assert len(model.layers) == 2 and not model.built


def test_category_embedding_first_is_still_accepted():
    model = xpann.Sequential([layers.CategoryEmbedding([1], [3], [2])])
    model.add(layers.Dense(2, activation="softmax"))
    model.build(3)
    assert model.output_dim == 2


# ----- optimizers defined in user code ----------------------------------------------------------


def test_user_optimizer_is_found_by_compile_and_load_model(rule_table, tmp_path):
    class PlainDescent(optimizers.Optimizer):
        """p -= lr g, under a name of its own."""

        name = "plain_descent"

        def __init__(self, learning_rate=0.05, **options):
            super().__init__(learning_rate, **options)

        def update_step(self, p, g, lr, step):
            p -= lr * g

    x, y = tabular()
    model = xpann.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2, activation="softmax")],
                             input_dim=3, seed=0)
    model.compile(optimizer="plain_descent", loss="sparse_categorical_crossentropy")
    assert type(model.optimizer) is PlainDescent
    before = model.get_weights()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 6
    assert any(not numpy.array_equal(a, b) for a, b in zip(before, model.get_weights()))

    path = tmp_path / "plain.npz"
    model.save(path)
    loaded = xpann.load_model(path)
    assert type(loaded.optimizer) is PlainDescent
    assert loaded.optimizer.learning_rate == 0.05 and loaded.optimizer.iterations == 6
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(got, want)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    assert loaded.optimizer.iterations == 9
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        numpy.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_user_optimizer_taking_a_built_in_name_is_refused(rule_table):
    with pytest.raises(ValueError, match="'adam' is taken by the built-in Adam"):
        class MyAdam(optimizers.Optimizer):
            name = "adam"
    assert optimizers.OPTIMIZERS.classes["adam"] is optimizers.Adam


def test_user_optimizer_taking_a_built_in_class_name_is_refused(rule_table):
    with pytest.raises(ValueError, match="class name 'SGD' is taken by the optimizer 'sgd'"):
        class SGD(optimizers.Optimizer):
            name = "my_sgd"
    assert "my_sgd" not in optimizers.OPTIMIZERS.names()


def test_built_in_rules_and_their_kernel_names_are_unchanged():
    assert optimizers.OPTIMIZERS.names() == ["adadelta", "adagrad", "adam", "adamw", "nadam", "rmsprop", "sgd"]
    assert type(optimizers.get("adamw")) is optimizers.AdamW and optimizers.AdamW.kernel == "adam"


# ----- named_weights ----------------------------------------------------------------------------


def test_named_weights_is_a_dict_in_get_weights_order():
    model = xpann.Sequential([layers.CategoryEmbedding([1], [3], [2]), layers.Dense(4),
                              layers.BatchNormalization(), layers.Dense(2, activation="softmax")],
                             input_dim=3, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*tabular(), epochs=1, batch_size=8, verbose=0)  # moving statistics away from 0 and 1
    named, weights = model.named_weights(), model.get_weights()
    assert isinstance(named, dict)
    assert list(named) == ["category_embedding_1/embeddings_0", "dense_2/kernel", "dense_2/bias",
                           "batch_normalization_3/gamma", "batch_normalization_3/beta",
                           "batch_normalization_3/moving_mean", "batch_normalization_3/moving_variance",
                           "dense_4/kernel", "dense_4/bias"]
    assert len(named) == len(weights)
    for got, want in zip(named.values(), weights):
        assert got.shape == want.shape
        numpy.testing.assert_array_equal(got, want)
