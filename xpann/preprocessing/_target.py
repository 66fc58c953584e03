"""The target column: classification or regression, and its encoding for training and back."""

import math

import numpy

from ._cells import _has_currency_sign, _is_bool, _label_key, _mostly, _parse_numbers, _scalar, _sort_key, _whole
from ._columns import ID_MIN_ROWS
from ._config import _check_version
from ._messages import _cell, _check_range, _distinct_cells, _lines, _shown, _where

MAX_INTEGER_CLASSES = 20
TASKS = ("classification", "regression")


def _require_series(series, what):
    """A ValueError for a DataFrame where one column is wanted (pandas' own error is cryptic)."""
    if hasattr(series, "columns"):
        raise ValueError(f"{what} takes the target column as a Series (frame['y']), not a DataFrame "
                         f"of {len(series.columns)} column(s).")


def infer_task(series):
    """("classification" or "regression", the reason in words) for a target column.

    Text, boolean or categorical targets, and whole numbers with at most 20 distinct values, are
    classification; other numbers are regression. Numbers with a few text cells among them are a
    ValueError naming the cells: a regression target cannot hold text.
    """
    _require_series(series, "infer_task")
    name = series.name
    values = series.dropna()
    if values.empty:
        raise ValueError(f"Target column {name!r} has no values (every cell is empty).")
    if _is_bool(series):
        return "classification", f"target {name!r} is true/false"
    numbers, bad = _parse_numbers(values)
    if not bad.any():
        numbers = numbers[~numpy.isnan(numbers)]
        if numbers.size == 0:
            raise ValueError(f"Target column {name!r} has no values (every cell is empty or NaN).")
        distinct = numpy.unique(numbers).size
        whole = _whole(numbers)
        if whole and distinct <= MAX_INTEGER_CLASSES:
            return "classification", (f"target {name!r} holds whole numbers with {distinct:,} distinct values "
                                      f"(at most {MAX_INTEGER_CLASSES})")
        kind = "whole numbers" if whole else "numbers"
        return "regression", f"target {name!r} holds {kind} with {distinct:,} distinct values"
    labels = values.map(_label_key)
    distinct = labels.nunique()
    if _mostly(bad, values):
        observed = numbers[~numpy.isnan(numbers)]
        few_whole = _whole(observed) and numpy.unique(observed).size <= MAX_INTEGER_CLASSES
        if not few_whole:
            raise ValueError(_numeric_except(values, name, bad))
    if set(labels.str.lower()) <= {"true", "false"}:
        return "classification", f"target {name!r} is true/false"
    return "classification", f"target {name!r} holds text, {distinct} distinct labels"


def _numeric_except(series, name, bad):
    positions = numpy.flatnonzero(bad)
    shown = _shown(_distinct_cells(series, positions))
    return (f"Target column {name!r} is numeric except {shown} on {_lines(series.index, positions)}; give "
            "those cells a number, or leave them empty to skip the rows.")


def check_classification_target(series):
    """ValueError when a classification target has so many distinct labels (more than half the
    rows, from 10 rows up) that most classes have a single row: it is not a class label."""
    values = series.dropna()
    distinct = values.map(_label_key).nunique()
    if len(values) < ID_MIN_ROWS or distinct * 2 <= len(values):
        return
    numbers, bad = _parse_numbers(values)
    counts = f"{distinct:,} distinct values in {len(values):,} rows; classification needs repeated labels"
    if not bad.any():
        raise ValueError(f"Target column {series.name!r} has {counts}. These are numbers: choose the regression task.")
    position = int(numpy.argmax(bad))
    first = values.iloc[position]
    hint = (" They look like numbers with a currency sign: remove the sign (577,402 and 577402 are read as "
            "numbers)." if _has_currency_sign(first) else " Is this the right column?")
    raise ValueError(f"Target column {series.name!r} holds text such as {_cell(first)} "
                     f"({_where(values.index, position)}) with {counts}.{hint}")


def _money_hint(text):
    return (" (numbers written with a currency sign; remove the sign: 577,402 and 577402 are read as "
            "numbers)") if _has_currency_sign(text) else ""


class TargetEncoder:
    """Classification: labels <-> codes 0..k-1 (``classes`` holds the labels exactly as written,
    numbers first by value, then text). Regression: values <-> (value - mean) / scale, so
    training sees a standardised target."""

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

    def _values(self, series):
        """A regression target as float64; text or a value too large is a ValueError naming it."""
        if _is_bool(series):
            raise ValueError(f"Target column {self.name!r} holds true/false values ({_cell(series.iloc[0])}, "
                             f"{_where(series.index, 0)}), so it cannot be a regression target; choose the "
                             "classification task.")
        values, bad = _parse_numbers(series)
        if bad.any():
            if not _mostly(bad, series):
                position = int(numpy.argmax(bad))
                raise ValueError(
                    f"Target column {self.name!r} holds text ({_cell(series.iloc[position])}, "
                    f"{_where(series.index, position)}), so it cannot be a regression target"
                    f"{_money_hint(series.iloc[position])}; choose the classification task.")
            raise ValueError(_numeric_except(series, self.name, bad))
        missing = numpy.isnan(values)
        if missing.any():
            raise ValueError(f"Target column {self.name!r} holds NaN ({_where(series.index, int(numpy.argmax(missing)))}); "
                             "drop those rows first.")
        _check_range(series, self.name, values)
        return values

    def fit(self, series):
        """Learn the classes, or the mean and scale, from the target values of the training rows."""
        _require_series(series, "TargetEncoder.fit")
        self._check_present(series)
        if len(series) == 0:
            raise ValueError(f"Target column {self.name!r} has no values.")
        if self.task == "classification":
            classes = {}
            for value in series.unique():
                classes.setdefault(_label_key(value), value if isinstance(value, str) else _scalar(value))
            if len(classes) < 2:
                only = next(iter(classes.values()))
                raise ValueError(f"Target column {self.name!r} has only one class ({only!r}) in the training "
                                 "rows; a classifier needs at least two.")
            self.classes = sorted(classes.values(), key=_sort_key)
        else:
            values = self._values(series)
            self.mean = float(values.mean())
            scale = float(values.std())
            if not (math.isfinite(self.mean) and math.isfinite(scale)):
                raise ValueError(f"Target column {self.name!r} holds numbers too large to standardise; rescale it.")
            self.scale = scale if scale > 0 else 1.0
        return self

    def transform(self, series):
        """int64 class codes, or the standardised float32 values; unknown labels are a ValueError."""
        self._require_fitted()
        _require_series(series, "TargetEncoder.transform")
        self._check_present(series)
        if self.task == "regression":
            return ((self._values(series) - self.mean) / self.scale).astype(numpy.float32)
        index = {_label_key(label): code for code, label in enumerate(self.classes)}
        keys = series.map(_label_key)
        codes = keys.map(index)
        unknown = codes.isna().to_numpy()
        if unknown.any():
            positions = numpy.flatnonzero(unknown)
            labels = list(dict.fromkeys(str(series.iloc[p]) for p in positions))
            raise ValueError(
                f"Target column {self.name!r} holds label(s) the model never saw in training: {_shown(labels)} "
                f"in {len(positions):,} of {len(series):,} rows ({_lines(series.index, positions)}); it knows "
                f"{_shown(self.classes, 20)}. Remove those rows to score the others."
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
        return {"version": 1, "task": self.task, "name": self.name,
                "classes": self.classes, "mean": self.mean, "scale": self.scale}

    @classmethod
    def from_config(cls, config):
        _check_version(config, "target encoding")
        try:
            encoder = cls(config["task"], name=str(config.get("name", "target")))
            if encoder.task == "classification":
                encoder.classes = [_scalar(label) for label in config["classes"]]
                keys = [_label_key(label) for label in encoder.classes]
                if len(encoder.classes) < 2 or len(set(keys)) != len(keys):
                    raise ValueError(f"the classes must be two or more different labels, got {encoder.classes!r}")
            else:
                encoder.mean, encoder.scale = float(config["mean"]), float(config["scale"])
                if not (math.isfinite(encoder.mean) and math.isfinite(encoder.scale) and encoder.scale > 0):
                    raise ValueError("mean and scale must be finite, scale > 0")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"The stored target encoding is damaged ({type(error).__name__}: {error}).") from None
        return encoder
