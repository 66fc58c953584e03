"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` with scikit-learn's parameter
names, defaults and stopping rule, trained by xpann (NumPy or CuPy).

Change the import, keep the code: ``from xpann.sklearn import MLPClassifier``. ``X`` is an array,
or a pandas DataFrame with text, gaps and dates, which goes through the tabular preprocessing of
``xpann train`` (numbers robustly scaled and clipped, text one-hot or coded, gaps filled). Arrays are standardised
column by column. Regression targets are standardised for training and predicted in their units.
``alpha`` is scikit-learn's L2 penalty, ``0.5 * alpha * ||W||^2 / batch size`` added to each
batch's loss. Pickling goes through xpann's model file: no device array or module is pickled.
Importing this module imports scikit-learn; ``import xpann`` does not.
"""

import math
import numbers
import os
import tempfile
import warnings

import numpy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import callbacks, layers, optimizers, preprocessing, regularizers
from .model import Sequential, load_model

SOLVERS = {"adam": lambda lr: optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
           "sgd": lambda lr: optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)}
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
MAX_AUTO_BATCH = 200  # batch_size="auto" is min(200, n_samples), as scikit-learn


def _is_frame(X):
    return type(X).__module__.startswith("pandas") and hasattr(X, "columns") and hasattr(X, "dtypes")


def _target_values(y):
    if y is None:
        raise ValueError("This estimator requires y to be passed, but the target y is None.")
    return y.to_numpy() if hasattr(y, "to_numpy") else numpy.asarray(y)


def _needs_tabular(X):
    """A DataFrame with a column that is not plain numbers, or has gaps: the tabular preprocessing."""
    if not _is_frame(X):
        return False
    from pandas.api import types

    return any(not types.is_numeric_dtype(dtype) or types.is_bool_dtype(dtype) for dtype in X.dtypes) or \
        bool(X.isna().to_numpy().any())


class _StoppingRule(callbacks.Callback):
    """scikit-learn's rule: count epochs whose training loss is not below the best by ``tol`` (or
    whose validation score is not above the best by ``tol``); stop when the count passes
    ``n_iter_no_change``. With validation, the best epoch's weights are put back at the end."""

    def __init__(self, estimator, validation):
        self.estimator, self.validation = estimator, validation
        self.count, self.best_weights = 0, None

    def on_epoch_end(self, epoch, logs=None):
        e = self.estimator
        loss = float(logs["loss"])
        e.loss_curve_.append(loss)
        e.n_iter_ += 1
        if self.validation is None:
            self.count = self.count + 1 if loss > e.best_loss_ - e.tol else 0
            e.best_loss_ = min(e.best_loss_, loss)
        else:
            score = e._score_arrays(*self.validation)
            e.validation_scores_.append(score)
            self.count = self.count + 1 if score < e.best_validation_score_ + e.tol else 0
            if score > e.best_validation_score_:
                e.best_validation_score_ = score
                self.best_weights = self.model.weights_snapshot()
        if self.count > e.n_iter_no_change:
            self.model.stop_training = True
            e._converged = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.restore_weights(self.best_weights)


class _BaseMLP(BaseEstimator):
    _task = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4, batch_size="auto",
                 learning_rate_init=1e-3, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, backend=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend

    # ----- checks -------------------------------------------------------------------------

    def _check_parameters(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be whole numbers >= 1, got {self.hidden_layer_sizes!r}.")
        activation = ACTIVATIONS.get(self.activation, self.activation)
        from . import activations

        activations.get(activation)  # an unknown name lists the valid ones
        if self.solver == "lbfgs":
            raise ValueError("solver='lbfgs' is not available: xpann trains by gradient steps; use 'adam' or 'sgd'.")
        if self.solver not in SOLVERS:
            optimizers.get(self.solver)
        for name, low in (("alpha", 0.0), ("tol", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= low:
                raise ValueError(f"{name} must be a number >= {low}, got {value!r}.")
        lr = self.learning_rate_init
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate_init must be a finite number > 0, got {lr!r}.")
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")
        batch = self.batch_size
        if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1):
            raise ValueError(f"batch_size must be 'auto' or a whole number >= 1, got {batch!r}.")
        fraction = self.validation_fraction
        if self.early_stopping and not (isinstance(fraction, numbers.Real) and 0 < fraction < 1):
            raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}.")
        return [int(s) for s in sizes], activation

    # ----- features -----------------------------------------------------------------------

    def _fit_features(self, X):
        """Learn the input transform on ``X`` and return the float32 inputs."""
        if _needs_tabular(X):
            if X.shape[0] == 0:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
            self.n_features_in_ = X.shape[1]
            self.feature_names_in_ = numpy.asarray([str(c) for c in X.columns], dtype=object)
            columns = list(X.columns)
            ids = preprocessing.id_columns(X, columns)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", preprocessing.PreprocessingWarning)
                self._tabular = preprocessing.TabularPreprocessor().fit(X, columns, ids=ids)
                return self._tabular.transform(X, warn_truncated=False)
        self._tabular = None
        X = validate_data(self, X, reset=True, dtype=[numpy.float64, numpy.float32])
        self._mean = X.mean(axis=0)
        scale = X.std(axis=0)
        self._scale = numpy.where(scale > 0, scale, 1.0)
        return self._standardised(X)

    def _standardised(self, X):
        return ((X - self._mean) / self._scale).astype(numpy.float32)

    def _features(self, X):
        check_is_fitted(self, "model_")
        if self._tabular is not None:
            if not _is_frame(X):
                raise ValueError("This estimator was fitted on a DataFrame with text or gaps; give it a DataFrame "
                                 "with the same columns.")
            return self._tabular.transform(X)
        X = validate_data(self, X, reset=False, dtype=[numpy.float64, numpy.float32])
        return self._standardised(X)

    # ----- training -----------------------------------------------------------------------

    def _network(self, width, outputs, output_activation, loss, batch):
        sizes, activation = self._check_parameters()
        penalty = regularizers.L2(0.5 * self.alpha / batch) if self.alpha else None
        stack = [layers.Dense(units, activation=activation, kernel_initializer="glorot_uniform",
                              kernel_regularizer=penalty) for units in sizes]
        stack.append(layers.Dense(outputs, activation=output_activation, kernel_initializer="glorot_uniform",
                                  kernel_regularizer=penalty))
        seed = self.random_state if isinstance(self.random_state, numbers.Integral) else \
            check_random_state(self.random_state).randint(2**31 - 1)
        model = Sequential(stack, input_dim=width, seed=int(seed), backend=self.backend)
        solver = SOLVERS.get(self.solver)
        optimizer = solver(self.learning_rate_init) if solver else \
            type(optimizers.get(self.solver))(learning_rate=self.learning_rate_init)
        model.compile(optimizer=optimizer, loss=loss)
        return model, int(seed)

    def _train(self, x, y, sample_weight, outputs, output_activation, loss, incremental=False):
        """``max_iter`` epochs under the stopping rule (fit), or one epoch (partial_fit)."""
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True.")
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        self.n_iter_ = 0
        if not continuing:
            self.loss_curve_ = []
            self.best_loss_ = numpy.inf
            self.validation_scores_, self.best_validation_score_ = ([], -numpy.inf) if self.early_stopping else \
                (None, None)
        validation = None
        if self.early_stopping:
            stratify = y if self._task == "classification" else None
            parts = train_test_split(x, y, *(() if sample_weight is None else (sample_weight,)),
                                     random_state=self.random_state, test_size=self.validation_fraction,
                                     stratify=stratify)
            x, x_val, y, y_val = parts[:4]
            sample_weight = parts[4] if sample_weight is not None else None
            if len(x_val) < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            validation = (x_val, y_val)
            self.best_loss_ = None
        batch = min(MAX_AUTO_BATCH, len(x)) if self.batch_size == "auto" else min(int(self.batch_size), len(x))
        if not continuing:
            self.model_, self._seed = self._network(x.shape[1], outputs, output_activation, loss, batch)
        self._converged = False
        rule = _StoppingRule(self, validation)
        self.model_.fit(x, y, epochs=1 if incremental else self.max_iter, batch_size=batch, shuffle=bool(self.shuffle),
                        sample_weight=sample_weight, verbose=2 if self.verbose else 0, callbacks=[rule])
        if not incremental and not self._converged and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                          "hasn't converged yet.", ConvergenceWarning)
        if not all(math.isfinite(v) for v in self.loss_curve_):
            raise ValueError("Training diverged (the loss became NaN or infinite); lower learning_rate_init.")
        self.loss_ = self.loss_curve_[-1]
        return self

    # ----- pickling through the model file -----------------------------------------------

    def __getstate__(self):
        state = dict(self.__dict__)
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model.npz")
                model.save(path)
                with open(path, "rb") as stream:
                    state["_model_file"] = stream.read()
        return state

    def __setstate__(self, state):
        data = state.pop("_model_file", None)
        self.__dict__.update(state)
        if data is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model.npz")
                with open(path, "wb") as stream:
                    stream.write(data)
                self.model_ = load_model(path, backend=self.backend)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = self.random_state is None
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's MLPClassifier, trained by xpann: softmax outputs over ``classes_`` (sorted as
    ``numpy.unique``), cross-entropy loss, the stopping rule of ``tol`` and ``n_iter_no_change``."""

    _task = "classification"

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y); ``sample_weight`` scales each sample's loss. Returns self."""
        return self._fit(X, y, sample_weight, classes=None, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), from where the last call left off; the first call needs every
        class in ``classes`` (and learns the input scaling from its X). Returns self."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight, classes=classes, incremental=True)

    def _fit(self, X, y, sample_weight, classes, incremental):
        self._check_parameters()
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        x = self._features(X) if continuing else self._fit_features(X)
        y = column_or_1d(_target_values(y), warn=True)
        if len(y) != x.shape[0]:
            raise ValueError(f"X has {x.shape[0]} samples but y has {len(y)}.")
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "multiclass"):
            raise ValueError(f"MLPClassifier takes one label per sample (binary or multiclass), got {type_of_target(y)}.")
        known = numpy.unique(y if classes is None else classes)
        if continuing and not (incremental and classes is None) and not numpy.array_equal(known, self.classes_):
            raise ValueError(f"{'partial_fit' if incremental else 'warm_start'} can only continue with the classes "
                             f"seen before ({self.classes_}), got {known}.")
        self.classes_ = self.classes_ if continuing else known
        unknown = ~numpy.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y holds labels not in classes ({self.classes_}): {numpy.unique(y[unknown])}.")
        if len(self.classes_) < 2:
            raise ValueError(f"The classifier needs samples of at least 2 classes in the data, got 1 class: "
                             f"{self.classes_[0]!r}.")
        codes = numpy.searchsorted(self.classes_, y)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, x, dtype=numpy.float64)
        self.n_outputs_ = 1
        return self._train(x, codes.astype(numpy.int64), weights, len(self.classes_), "softmax",
                           "sparse_categorical_crossentropy", incremental=incremental)

    def predict_proba(self, X):
        """Class probabilities, one column per class of ``classes_``."""
        x = self._features(X)
        return numpy.asarray(self.model_.predict(x), dtype=numpy.float64)

    def predict_log_proba(self, X):
        with numpy.errstate(divide="ignore"):
            return numpy.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample, as given in ``y``."""
        check_is_fitted(self, "model_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _score_arrays(self, x, codes):
        predicted = numpy.asarray(self.model_.predict(x)).argmax(axis=1)
        return float(numpy.mean(predicted == codes))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's MLPRegressor, trained by xpann on the standardised target (squared error),
    predicting in the target's units; ``y`` may have several columns."""

    _task = "regression"

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y); ``sample_weight`` scales each sample's loss. Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), from where the last call left off; the first call learns the
        input and target scaling from its rows. Returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _fit(self, X, y, sample_weight, incremental):
        self._check_parameters()
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        x = self._features(X) if continuing else self._fit_features(X)
        y = numpy.asarray(_target_values(y), dtype=numpy.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim not in (1, 2) or len(y) != x.shape[0]:
            raise ValueError(f"y must hold one value (or one row of values) per sample of X, got shape {y.shape}.")
        if not numpy.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
        y2 = y.reshape(len(y), -1)
        if continuing and y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} output(s) but the model was fitted with {self.n_outputs_}.")
        if not continuing:
            self._single_output = y.ndim == 1
            self._y_mean = y2.mean(axis=0)
            spread = y2.std(axis=0)
            self._y_scale = numpy.where(spread > 0, spread, 1.0)
        self.n_outputs_ = y2.shape[1]
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, x, dtype=numpy.float64)
        target = ((y2 - self._y_mean) / self._y_scale).astype(numpy.float32)
        return self._train(x, target, weights, y2.shape[1], "linear", "mean_squared_error", incremental=incremental)

    def predict(self, X):
        """Predictions in the target's units."""
        x = self._features(X)
        outputs = numpy.asarray(self.model_.predict(x), dtype=numpy.float64)
        values = outputs * self._y_scale + self._y_mean
        return values[:, 0] if self._single_output else values

    def _score_arrays(self, x, target):
        outputs = numpy.asarray(self.model_.predict(x), dtype=numpy.float64)
        truth = target.reshape(len(target), -1)
        total = ((truth - truth.mean(axis=0)) ** 2).sum()
        return float(1 - ((truth - outputs) ** 2).sum() / total) if total > 0 else 0.0


__all__ = ["MLPClassifier", "MLPRegressor"]
