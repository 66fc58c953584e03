"""Tabular preprocessing learned on the training rows and stored beside the weights as plain JSON.

``TabularPreprocessor`` turns a pandas DataFrame into a float32 array: numeric columns imputed
with the training median and standardised; text (and boolean) columns imputed with the most
frequent value and one-hot encoded (a category unseen in training becomes all zeros, with a
``PreprocessingWarning``); constant, all-missing and ID-like columns dropped and reported.
``TargetEncoder`` maps class labels to codes 0..k-1 and back, or standardises a regression target
and puts predictions back in its units. ``attach``/``from_model`` keep both in ``model.metadata``,
so a file written by ``model.save`` holds everything ``predict`` needs, and no pickle.

This is host-side code: it works on pandas and NumPy objects, never on device arrays. pandas is
imported only by the functions that need it, so ``import xpann`` stays fast.
"""

import math
import warnings

import numpy

CONFIG_VERSION = 1
METADATA_KEY = "tabular"
MAX_CATEGORIES = 100
MAX_INTEGER_CLASSES = 20
ID_MIN_ROWS = 10
TASKS = ("classification", "regression")


class PreprocessingWarning(UserWarning):
    """Data seen at transform time that the preprocessing had to handle by a rule (unseen categories)."""


# ----- values as text and as JSON scalars -----------------------------------------------------


def _scalar(value):
    """A plain JSON scalar for a label: bool, int, float (whole floats become int) or str."""
    if isinstance(value, (bool, numpy.bool_)):
        return bool(value)
    if isinstance(value, (int, numpy.integer)):
        return int(value)
    if isinstance(value, (float, numpy.floating)):
        value = float(value)
        return int(value) if value.is_integer() else value
    return str(value)


def _text(value):
    """The text key of one value: 3, 3.0 and "3" agree; True is "True"."""
    return str(_scalar(value))


def _as_text(series):
    """A Series of text keys; missing values stay missing."""
    return series.map(_text, na_action="ignore")


def _sort_key(value):
    return isinstance(value, str), value


def _shown(values, limit=5):
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _is_numeric(series):
    from pandas.api import types

    return types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype)


def _where(index, position):
    """Where a row is, in words: "line 7" when the index is named "line", else "row 7"."""
    return f"{index.name or 'row'} {index[position]}"


def _check_finite(name, values, index):
    bad = numpy.isinf(values)
    if bad.any():
        raise ValueError(f"Column {name!r} holds an infinite value ({_where(index, int(numpy.argmax(bad)))}); "
                         "replace it or leave the cell empty.")


def _numbers(series, name):
    """``series`` as float64 (NaN for missing); a text value is a ValueError naming it."""
    import pandas

    values = pandas.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        position = int(numpy.argmax(bad.to_numpy()))
        raise ValueError(
            f"Column {name!r} should hold numbers but holds {series.iloc[position]!r} "
            f"({_where(series.index, position)})."
        )
    values = values.to_numpy(dtype=numpy.float64, na_value=numpy.nan)
    _check_finite(name, values, series.index)
    return values


# ----- task choice ----------------------------------------------------------------------------


def infer_task(series):
    """("classification" or "regression", the reason in words) for a target column.

    Text, boolean or categorical targets, and whole numbers with at most 20 distinct values, are
    classification; other numbers are regression.
    """
    from pandas.api import types

    name = series.name
    values = series.dropna()
    if values.empty:
        raise ValueError(f"Target column {name!r} has no values (every cell is empty).")
    distinct = values.nunique()
    if types.is_bool_dtype(series.dtype):
        return "classification", f"target {name!r} is true/false"
    if not _is_numeric(series):
        return "classification", f"target {name!r} holds text, {distinct} distinct labels"
    whole = bool(numpy.all(numpy.mod(values.to_numpy(dtype=numpy.float64), 1) == 0))
    if whole and distinct <= MAX_INTEGER_CLASSES:
        return "classification", (f"target {name!r} holds whole numbers with {distinct} distinct values "
                                  f"(at most {MAX_INTEGER_CLASSES})")
    kind = "whole numbers" if whole else "numbers"
    return "regression", f"target {name!r} holds {kind} with {distinct} distinct values"


# ----- splitting ------------------------------------------------------------------------------


def split_rows(n, validation_fraction, seed=None, labels=None):
    """Shuffled (train_indices, validation_indices) for ``n`` rows; with ``labels`` each class is
    split in the same proportion (stratified), keeping at least one training row per class."""
    rng = numpy.random.default_rng(seed)
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"The validation fraction must be in [0, 1), got {validation_fraction!r}.")
    if validation_fraction == 0:
        return rng.permutation(n), numpy.empty(0, dtype=numpy.int64)
    if labels is None:
        groups = [numpy.arange(n)]
    else:
        import pandas

        codes = pandas.factorize(pandas.Series(list(labels), dtype=object).map(_text), use_na_sentinel=False)[0]
        if len(codes) != n:
            raise ValueError(f"labels has {len(codes)} entries for {n} rows; they must match.")
        groups = [numpy.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    train, validation = [], []
    for group in groups:
        group = rng.permutation(group)
        count = min(int(round(len(group) * validation_fraction)), len(group) - 1)
        validation.append(group[:count])
        train.append(group[count:])
    train, validation = numpy.concatenate(train), numpy.concatenate(validation)
    if validation.size == 0:
        raise ValueError(
            f"A validation fraction of {validation_fraction} leaves no validation rows out of {n}; "
            "give a larger fraction, or 0 for no validation."
        )
    return rng.permutation(train), rng.permutation(validation)


# ----- features -------------------------------------------------------------------------------


class TabularPreprocessor:
    """Learn per-column imputation, scaling and one-hot encodings on training rows; apply them.

    After ``fit``: ``columns`` (the specs used, in order), ``dropped`` ({column: reason}),
    ``missing`` ({column: count of empty cells in the training rows}), ``truncated``
    ({column: number of categories before keeping the ``max_categories`` most frequent}).
    """

    def __init__(self, max_categories=MAX_CATEGORIES):
        if isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 1:
            raise ValueError(f"max_categories must be a whole number >= 1, got {max_categories!r}.")
        self.max_categories = max_categories
        self.columns = None
        self.dropped = {}
        self.missing = {}
        self.truncated = {}
        self.rows = 0

    @property
    def fitted(self):
        return self.columns is not None

    def fit(self, frame, columns=None):
        """Learn from the rows of ``frame`` (a pandas DataFrame); ``columns`` defaults to all."""
        columns = list(frame.columns if columns is None else columns)
        missing_columns = [c for c in columns if c not in frame.columns]
        if missing_columns:
            raise ValueError(f"No column {_shown(missing_columns)} in the data; its columns are "
                             f"{', '.join(map(str, frame.columns))}.")
        if len(frame) == 0:
            raise ValueError("There are no rows to learn the preprocessing from.")
        specs, dropped, missing, truncated = [], {}, {}, {}
        for name in columns:
            series = frame[name]
            count = int(series.isna().sum())
            if count:
                missing[name] = count
            present = series.dropna()
            if present.empty:
                dropped[name] = "every value is missing"
                continue
            if _is_numeric(series):
                spec, reason = self._fit_numeric(name, series)
            else:
                spec, reason = self._fit_categorical(name, present, truncated)
            if reason:
                dropped[name] = reason
            else:
                specs.append(spec)
        if not specs:
            detail = "; ".join(f"{k!r}: {v}" for k, v in dropped.items())
            raise ValueError(f"No usable feature columns are left ({detail or 'there were none'}).")
        self.columns, self.dropped, self.missing, self.truncated = specs, dropped, missing, truncated
        self.rows = len(frame)
        return self

    @staticmethod
    def _fit_numeric(name, series):
        values = _numbers(series, name)
        observed = values[~numpy.isnan(values)]
        distinct = numpy.unique(observed)
        if distinct.size == 1:
            return None, f"constant (every value is {_text(distinct[0])})"
        if (observed.size >= ID_MIN_ROWS and distinct.size == observed.size
                and numpy.all(numpy.mod(distinct, 1) == 0) and distinct[-1] - distinct[0] < 2 * distinct.size):
            return None, "looks like a row ID (whole numbers, all different, densely numbered)"
        median = float(numpy.median(observed))
        filled = numpy.where(numpy.isnan(values), median, values)
        mean = float(filled.mean())
        scale = float(filled.std())
        return {"name": name, "kind": "numeric", "fill": median, "mean": mean,
                "scale": scale if scale > 0 else 1.0}, None

    def _fit_categorical(self, name, present, truncated):
        counts = _as_text(present).value_counts()
        if len(counts) == 1:
            return None, f"constant (every value is {counts.index[0]!r})"
        if len(present) >= ID_MIN_ROWS and len(counts) == len(present):
            return None, "looks like an ID (text, every value different)"
        # Most frequent first, ties in text order, so the choice does not depend on row order.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if len(ranked) > self.max_categories:
            truncated[name] = len(ranked)
            ranked = ranked[:self.max_categories]
        return {"name": name, "kind": "categorical", "fill": ranked[0][0],
                "categories": sorted(category for category, _ in ranked)}, None

    def _require_fitted(self):
        if not self.fitted:
            raise ValueError("The preprocessor is not fitted yet; call fit(frame) first.")

    @property
    def feature_columns(self):
        """The input columns that the transform reads, in order."""
        self._require_fitted()
        return [spec["name"] for spec in self.columns]

    @property
    def output_names(self):
        """One name per output column: the numeric column, or ``column=category``."""
        self._require_fitted()
        names = []
        for spec in self.columns:
            if spec["kind"] == "numeric":
                names.append(spec["name"])
            else:
                names.extend(f"{spec['name']}={category}" for category in spec["categories"])
        return names

    def missing_counts(self, frame):
        """{column: empty cells} over the columns the transform reads (only those with any)."""
        self._require_fitted()
        counts = {name: int(frame[name].isna().sum()) for name in self.feature_columns if name in frame}
        return {name: count for name, count in counts.items() if count}

    def check_columns(self, frame):
        """ValueError naming each feature column that ``frame`` lacks."""
        absent = [name for name in self.feature_columns if name not in frame.columns]
        if absent:
            word = "column" if len(absent) == 1 else "columns"
            raise ValueError(
                f"Missing feature {word} {_shown(absent, 10)}; the model was trained on "
                f"{', '.join(map(repr, self.feature_columns))}."
            )

    def transform(self, frame):
        """``frame`` as a float32 array (rows, len(output_names)); warns about unseen categories."""
        self._require_fitted()
        self.check_columns(frame)
        parts = []
        for spec in self.columns:
            series = frame[spec["name"]]
            if spec["kind"] == "numeric":
                values = _numbers(series, spec["name"])
                values = numpy.where(numpy.isnan(values), spec["fill"], values)
                parts.append(((values - spec["mean"]) / spec["scale"])[:, None])
            else:
                parts.append(self._one_hot(spec, series))
        return numpy.concatenate(parts, axis=1).astype(numpy.float32)

    @staticmethod
    def _one_hot(spec, series):
        import pandas

        text = _as_text(series).fillna(spec["fill"])
        codes = pandas.Index(spec["categories"]).get_indexer(text)
        unseen = codes < 0
        if unseen.any():
            values = sorted(set(text[unseen]))
            warnings.warn(
                f"Column {spec['name']!r}: {int(unseen.sum())} row(s) hold categories not seen in training "
                f"({_shown(values)}); they are encoded as all zeros.",
                PreprocessingWarning, stacklevel=3,
            )
        encoded = numpy.zeros((len(codes), len(spec["categories"])), dtype=numpy.float64)
        rows = numpy.flatnonzero(~unseen)
        encoded[rows, codes[rows]] = 1.0
        return encoded

    def fit_transform(self, frame, columns=None):
        return self.fit(frame, columns).transform(frame)

    def to_config(self):
        """A plain JSON-ready dict holding everything ``transform`` needs (and the fit report)."""
        self._require_fitted()
        return {"version": CONFIG_VERSION, "max_categories": self.max_categories, "rows": self.rows,
                "columns": self.columns, "dropped": self.dropped, "missing": self.missing,
                "truncated": self.truncated}

    @classmethod
    def from_config(cls, config):
        _check_version(config, "feature preprocessing")
        try:
            preprocessor = cls(max_categories=config.get("max_categories", MAX_CATEGORIES))
            columns = [dict(spec) for spec in config["columns"]]
            for spec in columns:
                if spec["kind"] == "numeric":
                    spec.update(fill=float(spec["fill"]), mean=float(spec["mean"]), scale=float(spec["scale"]))
                elif spec["kind"] == "categorical":
                    spec.update(fill=str(spec["fill"]), categories=[str(c) for c in spec["categories"]])
                else:
                    raise ValueError(f"unknown column kind {spec['kind']!r}")
            preprocessor.columns = columns
            preprocessor.dropped = dict(config.get("dropped", {}))
            preprocessor.missing = dict(config.get("missing", {}))
            preprocessor.truncated = dict(config.get("truncated", {}))
            preprocessor.rows = int(config.get("rows", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"The stored feature preprocessing is damaged ({type(error).__name__}: {error}).") from None
        return preprocessor


def _check_version(config, what):
    if not isinstance(config, dict):
        raise ValueError(f"The stored {what} is damaged (not a JSON object).")
    version = config.get("version")
    if not isinstance(version, int) or version > CONFIG_VERSION:
        raise ValueError(
            f"The stored {what} has version {version!r}; this xpann reads version {CONFIG_VERSION} "
            "and older. Upgrade xpann."
        )


# ----- target ---------------------------------------------------------------------------------


class TargetEncoder:
    """Classification: labels <-> codes 0..k-1 (``classes`` holds the original labels, sorted).
    Regression: values <-> (value - mean) / scale, so training sees a standardised target."""

    def __init__(self, task, name="target"):
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; valid tasks are {', '.join(TASKS)}.")
        self.task = task
        self.name = name
        self.classes = None
        self.mean = None
        self.scale = None

    @property
    def fitted(self):
        return self.classes is not None or self.mean is not None

    @property
    def n_outputs(self):
        """Units of the output layer: one per class, or one value."""
        self._require_fitted()
        return len(self.classes) if self.task == "classification" else 1

    @property
    def output_activation(self):
        return "softmax" if self.task == "classification" else "linear"

    @property
    def loss(self):
        return "sparse_categorical_crossentropy" if self.task == "classification" else "mean_squared_error"

    def _require_fitted(self):
        if not self.fitted:
            raise ValueError("The target encoder is not fitted yet; call fit(series) first.")

    def _check_present(self, series):
        if series.isna().any():
            raise ValueError(f"Target column {self.name!r} has {int(series.isna().sum())} empty cell(s); "
                             "drop those rows first.")

    def fit(self, series):
        """Learn the classes, or the mean and scale, from the target values of the training rows."""
        self._check_present(series)
        if len(series) == 0:
            raise ValueError(f"Target column {self.name!r} has no values.")
        if self.task == "classification":
            classes = {}
            for value in series.unique():
                classes.setdefault(_text(value), _scalar(value))
            if len(classes) < 2:
                only = next(iter(classes.values()))
                raise ValueError(f"Target column {self.name!r} has only one class ({only!r}) in the training "
                                 "rows; a classifier needs at least two.")
            self.classes = sorted(classes.values(), key=_sort_key)
        else:
            if not _is_numeric(series):
                sample = next((v for v in series if not isinstance(v, (int, float))), series.iloc[0])
                raise ValueError(f"Target column {self.name!r} holds text ({sample!r}), so it cannot be a "
                                 "regression target; choose the classification task.")
            values = _numbers(series, self.name)
            self.mean = float(values.mean())
            scale = float(values.std())
            self.scale = scale if scale > 0 else 1.0
        return self

    def transform(self, series):
        """int64 class codes, or the standardised float32 values; unknown labels are a ValueError."""
        self._require_fitted()
        self._check_present(series)
        if self.task == "regression":
            return ((_numbers(series, self.name) - self.mean) / self.scale).astype(numpy.float32)
        index = {_text(label): code for code, label in enumerate(self.classes)}
        text = _as_text(series)
        codes = text.map(index)
        unknown = codes.isna()
        if unknown.any():
            raise ValueError(
                f"Target column {self.name!r} holds label(s) the model never saw in training: "
                f"{_shown(sorted(set(text[unknown])))}; it knows {_shown(self.classes, 20)}."
            )
        return codes.to_numpy(dtype=numpy.int64)

    def decode(self, outputs):
        """Model outputs (rows, units) as a host array of labels or of values in the target's units."""
        self._require_fitted()
        outputs = numpy.asarray(outputs)
        if self.task == "regression":
            return outputs.reshape(len(outputs), -1)[:, 0].astype(numpy.float64) * self.scale + self.mean
        labels = numpy.empty(len(self.classes), dtype=object)
        labels[:] = self.classes
        return labels[outputs.argmax(axis=1)]

    def to_config(self):
        self._require_fitted()
        return {"version": CONFIG_VERSION, "task": self.task, "name": self.name,
                "classes": self.classes, "mean": self.mean, "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        _check_version(config, "target encoding")
        try:
            encoder = cls(config["task"], name=str(config.get("name", "target")))
            if encoder.task == "classification":
                encoder.classes = [_scalar(label) for label in config["classes"]]
            else:
                encoder.mean, encoder.scale = float(config["mean"]), float(config["scale"])
                if not (math.isfinite(encoder.mean) and math.isfinite(encoder.scale) and encoder.scale > 0):
                    raise ValueError("mean and scale must be finite, scale > 0")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"The stored target encoding is damaged ({type(error).__name__}: {error}).") from None
        return encoder


# ----- in the model file ----------------------------------------------------------------------


def attach(model, preprocessor, target_encoder, **extra):
    """Store both (and any JSON-ready ``extra`` facts) in ``model.metadata`` for ``model.save``."""
    model.metadata[METADATA_KEY] = {"version": CONFIG_VERSION, "features": preprocessor.to_config(),
                                    "target": target_encoder.to_config(), **extra}


def from_model(model):
    """(TabularPreprocessor, TargetEncoder, the stored dict) from a model saved after ``attach``."""
    stored = (model.metadata or {}).get(METADATA_KEY)
    if stored is None:
        raise ValueError("The model holds no tabular preprocessing (it was not trained by `xpann train` "
                         "or given one with xpann.preprocessing.attach).")
    _check_version(stored, "tabular preprocessing")
    if not isinstance(stored.get("features"), dict) or not isinstance(stored.get("target"), dict):
        raise ValueError("The stored tabular preprocessing is damaged (features or target missing).")
    return (TabularPreprocessor.from_config(stored["features"]), TargetEncoder.from_config(stored["target"]),
            stored)
