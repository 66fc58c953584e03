"""Bad input: each mistake is a ValueError, raised when the object is built or the call made,
whose message says what was expected."""

import numpy
import pytest

import xpann
from xpann.layers import Dense, Dropout


def data(n=30, features=4, classes=3, seed=0):
    rng = numpy.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, classes, size=n)


def classifier(loss="sparse_categorical_crossentropy", classes=3, activation="softmax", metrics=("accuracy",)):
    model = xpann.Sequential([Dense(8, activation="relu"), Dense(classes, activation=activation)],
                             input_dim=4, seed=0)
    model.compile("adam", loss, metrics=list(metrics))
    return model


def regressor(outputs=1):
    model = xpann.Sequential([Dense(outputs)], input_dim=4, seed=0)
    model.compile("sgd", "mse")
    return model


X, Y = data()


# ----- the data -------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch", "predict"])
def test_a_wrong_feature_count(call):
    model = classifier()
    narrow = X[:, :3]
    args = (narrow,) if call == "predict" else (narrow, Y)
    kwargs = {"verbose": 0} if call == "fit" else {}
    with pytest.raises(ValueError, match="x has 3 features but the model expects 4"):
        getattr(model, call)(*args, **kwargs)


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch"])
def test_x_and_y_of_different_lengths(call):
    kwargs = {"verbose": 0} if call == "fit" else {}
    with pytest.raises(ValueError, match="x has 30 samples but y has 29"):
        getattr(classifier(), call)(X, Y[:29], **kwargs)


@pytest.mark.parametrize("labels, shown", [(3, "from 0 to 3"), (-1, "from -1 to 2"), (10, "from 0 to 10")])
def test_sparse_labels_outside_the_classes(labels, shown):
    y = Y.copy()
    y[5] = labels
    with pytest.raises(ValueError, match=rf"labels {shown}.*3 units.*\[0, 3\)"):
        classifier().fit(X, y, verbose=0)


def test_sparse_labels_that_are_not_whole_numbers():
    with pytest.raises(ValueError, match="whole-number class labels"):
        classifier().fit(X, Y + 0.5, verbose=0)


def test_one_hot_targets_with_a_sparse_loss():
    with pytest.raises(ValueError, match="1-D integer class labels.*categorical_crossentropy"):
        classifier().fit(X, numpy.eye(3)[Y], verbose=0)


def test_integer_labels_with_categorical_crossentropy():
    with pytest.raises(ValueError, match=r"shape \(samples, 3\).*sparse_categorical_crossentropy"):
        classifier(loss="categorical_crossentropy").fit(X, Y, verbose=0)


def test_binary_labels_outside_0_and_1():
    model = classifier(loss="binary_crossentropy", classes=1, activation="sigmoid")
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model.fit(X, Y, verbose=0)


def test_regression_targets_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"shape \(30, 3\).*outputs 2 value.*\(samples, 2\)"):
        regressor(outputs=2).fit(X, numpy.zeros((30, 3)), verbose=0)


@pytest.mark.parametrize("value", [numpy.nan, numpy.inf, -numpy.inf])
@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_nan_or_inf_in_x(value, call):
    x = X.copy()
    x[3, 2] = value
    model = classifier()
    args = (x,) if call == "predict" else (x, Y)
    kwargs = {"verbose": 0} if call == "fit" else {}
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        getattr(model, call)(*args, **kwargs)


@pytest.mark.parametrize("value", [numpy.nan, numpy.inf])
def test_nan_or_inf_in_y(value):
    y = X[:, 0].copy()
    y[7] = value
    with pytest.raises(ValueError, match="y contains NaN or infinite values"):
        regressor().fit(X, y, verbose=0)
    labels = Y.astype(float)
    labels[7] = value
    with pytest.raises(ValueError, match="y contains NaN or infinite values"):
        classifier().fit(X, labels, verbose=0)


def test_values_too_large_for_float32():
    x = X.copy()
    x[0, 0] = 1e300
    with pytest.raises(ValueError, match="too large for float32"):
        classifier().predict(x)
    y = X[:, 0].copy()
    y[0] = -1e39
    with pytest.raises(ValueError, match="y holds values too large for float32"):
        regressor().fit(X, y, verbose=0)


def test_strings_in_x():
    text = numpy.array([["5.1", "3.5", "1.4", "setosa"]] * 4)
    with pytest.raises(ValueError, match="x must hold numbers.*encode text columns"):
        classifier().predict(text)
    with pytest.raises(ValueError, match="x must hold numbers"):
        classifier().predict([[1.0, 2.0, "a", 4.0]])


def test_objects_in_x():
    mixed = numpy.array([[1.0, 2.0, None, 4.0]], dtype=object)
    with pytest.raises(ValueError, match="x must hold numbers.*object"):
        classifier().predict(mixed)


def test_strings_as_class_labels():
    names = numpy.array(["setosa", "versicolor", "virginica"])[Y]
    with pytest.raises(ValueError, match="y must hold numbers"):
        classifier().fit(X, names, verbose=0)


def test_ragged_rows():
    with pytest.raises(ValueError, match="numeric array or array-like"):
        classifier().predict([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]])


def test_one_dimensional_x():
    with pytest.raises(ValueError, match=r"2-D \(samples, features\).*\(30,\).*reshape\(-1, 1\)"):
        classifier().predict(X[:, 0])


def test_three_dimensional_x():
    with pytest.raises(ValueError, match=r"2-D \(samples, features\).*\(30, 4, 1\)"):
        classifier().predict(X[:, :, None])


def test_none_and_empty_data():
    model = classifier()
    with pytest.raises(ValueError, match="x is None"):
        model.predict(None)
    with pytest.raises(ValueError, match="x has no samples"):
        model.predict(numpy.zeros((0, 4)))
    with pytest.raises(ValueError, match="y has no samples"):
        model.fit(X, numpy.zeros(0), verbose=0)


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch"])
def test_missing_targets(call):
    kwargs = {"verbose": 0} if call == "fit" else {}
    with pytest.raises(ValueError, match="y is None"):
        getattr(classifier(), call)(X, None, **kwargs)


def test_a_wrong_validation_data_shape():
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        classifier().fit(X, Y, validation_data=(X,), verbose=0)
    with pytest.raises(ValueError, match="features but the model expects 4"):
        classifier().fit(X, Y, validation_data=(X[:, :3], Y), verbose=0)


def test_a_bad_validation_set_is_named_as_such():
    with pytest.raises(ValueError, match="validation"):
        classifier().fit(X, Y, validation_data=(X[:, :3], Y), verbose=0)


# ----- names ----------------------------------------------------------------------------------

API_NAMES = {
    "activation": ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish",
                   "softplus", "softmax"],
    "initializer": ["zeros", "ones", "uniform", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                    "lecun_uniform", "lecun_normal"],
    "loss": ["mean_squared_error", "mse", "mean_absolute_error", "mae", "root_mean_squared_error", "rmse",
             "huber", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"],
    "optimizer": ["sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "nadam"],
    "metric": ["accuracy", "mae", "mse", "rmse", "r2"],
}

UNKNOWN = {
    "activation": lambda: Dense(3, activation="rleu"),
    "initializer": lambda: Dense(3, kernel_initializer="he_norm"),
    "loss": lambda: regressor().compile("adam", "mean_square_error"),
    "optimizer": lambda: regressor().compile("adamm", "mse"),
    "metric": lambda: regressor().compile("adam", "mse", metrics=["precision_at_k"]),
}


@pytest.mark.parametrize("kind", sorted(UNKNOWN))
def test_an_unknown_name_lists_the_valid_names(kind):
    with pytest.raises(ValueError, match=f"Unknown {kind}") as caught:
        UNKNOWN[kind]()
    message = str(caught.value)
    missing = [name for name in API_NAMES[kind] if name not in message]
    assert not missing, message


def test_the_bias_initializer_name_is_checked_too():
    with pytest.raises(ValueError, match="Unknown initializer"):
        Dense(3, bias_initializer="zero")


def test_an_unknown_layer_object():
    with pytest.raises(ValueError, match="xpann layers"):
        xpann.Sequential(["dense"])


# ----- hyperparameters ------------------------------------------------------------------------


@pytest.mark.parametrize("build, words", [
    (lambda: xpann.optimizers.SGD(learning_rate=-0.1), "learning_rate.*> 0"),
    (lambda: xpann.optimizers.Adam(learning_rate=0), "learning_rate.*> 0"),
    (lambda: xpann.optimizers.RMSprop(learning_rate="fast"), "learning_rate must be a number"),
    (lambda: xpann.optimizers.Adam(learning_rate=float("nan")), "learning_rate.*finite"),
    (lambda: xpann.optimizers.SGD(momentum=-0.9), "momentum.*>= 0"),
    (lambda: xpann.optimizers.SGD(nesterov=True), "nesterov.*momentum"),
    (lambda: xpann.optimizers.Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
    (lambda: xpann.optimizers.Adam(weight_decay=-1), "weight_decay.*>= 0"),
    (lambda: xpann.optimizers.SGD(clipnorm=0), "clipnorm.*> 0"),
    (lambda: Dropout(1.5), r"rate must be in \[0, 1\), got 1.5"),
    (lambda: Dropout(-0.1), r"rate must be in \[0, 1\)"),
    (lambda: Dropout(1.0), r"rate must be in \[0, 1\)"),
    (lambda: Dense(0), "units must be a whole number >= 1, got 0"),
    (lambda: Dense(2.5), "units must be a whole number"),
    (lambda: Dense(-3), "units must be a whole number"),
    (lambda: xpann.losses.Huber(delta=0), "delta.*> 0"),
    (lambda: xpann.losses.BinaryCrossentropy(from_logits="yes"), "from_logits must be True or False"),
    (lambda: xpann.Sequential([Dense(1)], input_dim=0), "input_dim must be a whole number >= 1"),
    (lambda: xpann.Sequential([Dense(1)], seed=-1), "seed must be a whole number >= 0"),
    (lambda: xpann.Sequential([Dense(1)], seed=1.5), "seed must be a whole number"),
])
def test_bad_hyperparameters(build, words):
    with pytest.raises(ValueError, match=words):
        build()


@pytest.mark.parametrize("options", [
    {"clipnorm": 1.0, "clipvalue": 0.5},
    {"clipnorm": 1.0, "global_clipnorm": 1.0},
    {"global_clipnorm": 1.0, "clipvalue": 0.5},
])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RMSprop"])
def test_two_clip_options_at_once(optimizer, options):
    with pytest.raises(ValueError, match="at most one of clipnorm, global_clipnorm and clipvalue"):
        getattr(xpann.optimizers, optimizer)(**options)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "rmse"])
def test_accuracy_with_a_regression_loss(loss):
    with pytest.raises(ValueError, match="accuracy needs a classification loss.*mae, mse, rmse or r2"):
        regressor().compile("adam", loss, metrics=["accuracy"])


def test_compile_needs_a_loss():
    with pytest.raises(ValueError, match="compile needs a loss; valid names are"):
        regressor().compile("adam")


@pytest.mark.parametrize("arguments, words", [
    ({"epochs": -1}, "epochs must be a whole number >= 0"),
    ({"epochs": 1.5}, "epochs must be a whole number"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"batch_size": True}, "batch_size must be a whole number"),
    ({"validation_split": 1.0}, r"validation_split must be in \[0, 1\)"),
    ({"validation_split": -0.2}, r"validation_split must be in \[0, 1\)"),
    ({"validation_split": 0.99}, "leaves no samples for training out of 30"),
    ({"validation_split": 1e-20}, "leaves no samples for validation out of 30"),
])
def test_bad_fit_arguments(arguments, words):
    with pytest.raises(ValueError, match=words):
        classifier().fit(X, Y, verbose=0, **arguments)


def test_bad_batch_sizes_for_inference():
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        classifier().predict(X, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        classifier().evaluate(X, Y, batch_size=-4)


def test_a_failed_compile_leaves_the_model_as_it_was():
    model = classifier()
    optimizer, loss = model.optimizer, model.loss
    with pytest.raises(ValueError):
        model.compile("sgd", "mse", metrics=["accuracy"])
    assert model.optimizer is optimizer and model.loss is loss
    model.fit(X, Y, epochs=1, verbose=0)


# ----- order of calls -------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch"])
def test_training_calls_before_compile(call):
    model = xpann.Sequential([Dense(3, activation="softmax")], input_dim=4)
    kwargs = {"verbose": 0} if call == "fit" else {}
    with pytest.raises(ValueError, match=rf"Call compile\(optimizer=..., loss=...\) before {call}"):
        getattr(model, call)(X, Y, **kwargs)


@pytest.mark.parametrize("call", ["predict", "get_weights", "set_weights", "count_params"])
def test_weight_calls_before_the_model_is_built(call):
    model = xpann.Sequential([Dense(3)])
    args = {"predict": (X,), "set_weights": ([],)}.get(call, ())
    with pytest.raises(ValueError, match=rf"no weights yet; give input_dim or call fit before {call}"):
        getattr(model, call)(*args)


def test_a_model_without_layers():
    with pytest.raises(ValueError, match="no layers"):
        xpann.Sequential([], input_dim=3)


# ----- backends and dtypes --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tpu", "gpu", "torch", ""])
def test_an_unknown_backend_name(name):
    with pytest.raises(ValueError, match="Unknown backend.*numpy, cupy, auto"):
        xpann.Sequential([Dense(1)], backend=name)
    with pytest.raises(ValueError, match="Unknown backend.*numpy, cupy, auto"):
        xpann.set_backend(name)
    with pytest.raises(ValueError, match="Unknown backend.*numpy, cupy, auto"):
        with xpann.use_backend(name):
            pass
    assert xpann.get_backend().name in ("numpy", "cupy")


def test_a_backend_that_is_not_a_name_is_refused_at_once():
    with pytest.raises(ValueError, match="backend"):
        xpann.Sequential([Dense(1)], backend=123)


@pytest.mark.parametrize("dtype", ["float16", "int32", "bfloat16", "float128"])
def test_an_unsupported_dtype(dtype):
    with pytest.raises(ValueError, match="Unknown dtype.*float32, float64"):
        xpann.Sequential([Dense(1)], dtype=dtype)


def test_numpy_seeds_and_dtypes_are_accepted():
    model = xpann.Sequential([Dense(1)], input_dim=2, seed=numpy.int64(3), dtype=numpy.float64)
    assert model.dtype == "float64"
    numpy.testing.assert_array_equal(model.get_weights()[0],
                                      xpann.Sequential([Dense(1)], input_dim=2, seed=3, dtype="float64").get_weights()[0])


def test_a_layer_object_serves_one_model_in_one_place():
    hidden = [Dense(3, activation="relu"), Dense(1)]
    first = xpann.Sequential(hidden, input_dim=2, seed=1)
    with pytest.raises(ValueError, match="another model"):
        xpann.Sequential(hidden, input_dim=2, seed=2)
    twice = Dense(3)
    with pytest.raises(ValueError, match="twice"):
        xpann.Sequential([twice, twice])
    x = numpy.ones((4, 2))
    numpy.testing.assert_array_equal(first.predict(x), first.predict(x))


@pytest.mark.parametrize("call, match", [
    (lambda: xpann.Sequential(Dense(3)), "list of xpann layers"),
    (lambda: regressor().compile("sgd", "mse", metrics=5), "list of metric names"),
    (lambda: regressor().fit(numpy.ones((4, 4)), numpy.ones(4),
                             callbacks=xpann.callbacks.EarlyStopping()), "list of xpann.callbacks"),
])
def test_containers_that_are_not_lists_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
