"""Tabular preprocessing learned on the training rows and stored beside the weights as plain JSON.

``TabularPreprocessor`` turns a pandas DataFrame into a float32 array. Each column becomes one
of three kinds:

* numbers (a numeric column, or text cells that read as numbers, ``1,699.0`` included):
  imputed with the training median and standardised. A few cells that are not numbers (at
  most 5% of the filled ones) are read as missing, with a ``PreprocessingWarning`` naming them;
* dates (``YYYY-MM-DD``, with or without a time): days since 1970-01-01, then as numbers;
* text (and true/false): imputed with the most frequent value and one-hot encoded, keeping the
  100 most frequent categories (others, and categories unseen in training, become all zeros).

Constant and all-missing columns are dropped and reported, and so are ID columns: text with a
different value in every row, or whole numbers numbered 1, 2, 3, ... under an ID-like name.
``TargetEncoder`` maps class labels (kept exactly as written) to codes 0..k-1 and back, or
standardises a regression target and puts predictions back in its units. ``attach``/
``from_model`` keep both in ``model.metadata``, so a file written by ``model.save`` holds
everything ``predict`` needs, and no pickle.

This is host-side code: it works on pandas and NumPy objects, never on device arrays. pandas is
imported only by the functions that need it, so ``import xpann`` stays fast.
"""

import math
import re
import warnings

import numpy

CONFIG_VERSION = 2  # 2 added date columns; a configuration without them is still written as 1
METADATA_KEY = "tabular"
MAX_CATEGORIES = 100
MAX_INTEGER_CLASSES = 20
ID_MIN_ROWS = 10
STRAY_FRACTION = 0.05  # a column of numbers or dates may hold this share of other values, read as missing
TRANSFORM_STRAY_FRACTION = 0.5  # ...and new rows of a number or date column, this share (more is an error)
FLOAT32_MAX = float(numpy.finfo(numpy.float32).max)
TASKS = ("classification", "regression")

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")  # 1,699.0 (thousands separated by commas)
_MONEY = re.compile(r"[+-]?[$€£¥]\s*[\d.,]+|[\d.,]+\s*[$€£¥]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
_ID_WORDS = {"id", "ids", "idx", "index", "key", "pk", "uuid", "guid", "row", "rowid", "rownum", "rownumber",
             "rowno", "recordid"}


class PreprocessingWarning(UserWarning):
    """Data the preprocessing handled by a rule: unseen categories, or cells that are not numbers
    or dates in such a column (read as missing). ``column`` names the column."""

    def __init__(self, message, column=None):
        super().__init__(message)
        self.column = column


def _warn(message, column):
    warnings.warn(PreprocessingWarning(message, column), stacklevel=3)


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


def _category(value):
    """The text key of a category: as ``_text``, and true/false in any case is "True"/"False"
    (the spelling of a boolean column, so that files and models agree however they were read)."""
    if isinstance(value, str):
        lowered = value.lower()
        return lowered.capitalize() if lowered in ("true", "false") else value
    return _text(value)


def _as_text(series):
    """A Series of category keys; missing values stay missing."""
    return series.map(_category, na_action="ignore")


def _number_in(text):
    """The float that ``text`` writes as a plain number ("3", "-1.5e3"), else None."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else None
    return None


def _label_key(value):
    """The key that matches class labels: "1", "1.0" and 1 agree; other text is compared as written
    (without surrounding spaces)."""
    if isinstance(value, str):
        number = _number_in(value)
        return value.strip() if number is None else _text(number)
    return _text(value)


def _sort_key(label):
    """Numeric labels first, by value; then text labels, alphabetically."""
    key = _label_key(label)
    number = _number_in(key)
    return (0, number, "") if number is not None else (1, 0.0, key)


def _shown(values, limit=5):
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _cell(value):
    """One cell for a message: text quoted, numbers and true/false as plain Python values."""
    return repr(value) if isinstance(value, str) else repr(_scalar(value))


def _is_numeric(series):
    from pandas.api import types

    return types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype)


def _is_bool(series):
    from pandas.api import types

    return types.is_bool_dtype(series.dtype)


def _where(index, position):
    """Where a row is, in words: "line 7" when the index is named "line", else "row 7"."""
    return f"{index.name or 'row'} {index[position]}"


def _lines(index, positions, limit=5):
    """ "line 7" or "lines 7, 9, 12 and 3 more" for the rows at ``positions``."""
    word = index.name or "row"
    shown = [str(index[p]) for p in positions[:limit]]
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"{word} {shown[0]}" if len(positions) == 1 else f"{word}s {', '.join(shown)}{more}"


# ----- reading numbers and dates --------------------------------------------------------------


def _present_text(series):
    """(mask of the filled cells, their text without surrounding spaces)."""
    present = series.notna().to_numpy()
    text = series[present].map(str).str.strip()
    return present, text


def _parse_numbers(series):
    """(float64 values, mask of filled cells that are not numbers). Missing cells, the words
    NaN/nan, and the cells that are not numbers are NaN in the values."""
    import pandas

    if _is_numeric(series):
        return series.to_numpy(dtype=numpy.float64, na_value=numpy.nan), numpy.zeros(len(series), dtype=bool)
    values = numpy.full(len(series), numpy.nan)
    bad = numpy.zeros(len(series), dtype=bool)
    present, text = _present_text(series)
    if _is_bool(series):
        bad[present] = True
        return values, bad
    numbers = pandas.to_numeric(text, errors="coerce").astype(numpy.float64)
    failed = numbers.isna() & (text.str.lower() != "nan") & (text != "")
    if failed.any():
        grouped = failed & text.str.fullmatch(_GROUPED_NUMBER.pattern)
        if grouped.any():
            numbers[grouped] = pandas.to_numeric(text[grouped].str.replace(",", "", regex=False),
                                                 errors="coerce").astype(numpy.float64)
            failed &= ~grouped
    values[present] = numbers.to_numpy(dtype=numpy.float64)
    bad[present] = failed.to_numpy(dtype=bool)
    return values, bad


def _parse_dates(series):
    """(days since 1970-01-01 as float64, mask of filled cells that are not ISO dates)."""
    import pandas

    values = numpy.full(len(series), numpy.nan)
    bad = numpy.zeros(len(series), dtype=bool)
    present, text = _present_text(series)
    matched = text.str.fullmatch(_DATE.pattern).fillna(False).astype(bool)
    stamps = pandas.to_datetime(text.where(matched), format="ISO8601", errors="coerce", utc=True)
    days = (stamps - pandas.Timestamp("1970-01-01", tz="UTC")) / pandas.Timedelta(days=1)
    values[present] = days.to_numpy(dtype=numpy.float64, na_value=numpy.nan)
    bad[present] = numpy.isnan(values[present]) & (text != "").to_numpy(dtype=bool)
    return values, bad


def _mostly(bad, series):
    """True when the filled cells of ``series`` are all good but at most STRAY_FRACTION of them."""
    filled = int(series.notna().sum())
    return filled > int(bad.sum()) and bad.sum() <= STRAY_FRACTION * filled


def _kind(series):
    """("numeric" | "date" | "categorical", the parsed (values, bad) or None) for a feature column."""
    if _is_bool(series):
        return "categorical", None
    if _is_numeric(series):
        return "numeric", _parse_numbers(series)
    parsed = _parse_numbers(series)
    if _mostly(parsed[1], series):
        return "numeric", parsed
    sample = series.dropna().head(50).map(str).str.strip()
    if len(sample) and sample.str.fullmatch(_DATE.pattern).mean() >= 0.5:
        dated = _parse_dates(series)
        if _mostly(dated[1], series):
            return "date", dated
    return "categorical", None


def _stray_cells(series, name, bad, kind, filled=None, limit=STRAY_FRACTION):
    """Cells of a number or date column that are not one: read as missing with a warning when they
    are at most ``limit`` of the filled cells, else a ValueError naming the first."""
    count = int(bad.sum())
    if not count:
        return
    positions = numpy.flatnonzero(bad)
    if count > limit * int(series.notna().sum()):
        raise ValueError(f"Column {name!r} should hold {kind} but holds {_cell(series.iloc[positions[0]])} "
                         f"({_where(series.index, positions[0])}).")
    values = list(dict.fromkeys(str(series.iloc[p]).strip() for p in positions))
    fill = f" (filled with {filled})" if filled else ""
    _warn(f"Column {name!r} holds {kind} except {_shown(values)} ({count} cell(s), first on "
          f"{_where(series.index, positions[0])}); read as missing{fill}.", name)


def _check_range(series, name, values):
    """ValueError naming the first value that is infinite or too large for float32."""
    with numpy.errstate(invalid="ignore"):
        big = numpy.abs(values) > FLOAT32_MAX
    if not big.any():
        return
    position = int(numpy.argmax(big))
    where = _where(series.index, position)
    if numpy.isinf(values[position]):
        raise ValueError(f"Column {name!r} holds an infinite value ({where}); replace it or leave the cell empty.")
    shown = str(series.iloc[position]).strip()
    raise ValueError(f"Value {shown} in column {name!r} ({where}) is too large for float32 (at most about "
                     "3.4e38); rescale the column or leave the cell empty.")


def _numbers(series, name):
    """``series`` as float64 (NaN for missing); a text value is a ValueError naming it."""
    values, bad = _parse_numbers(series)
    if bad.any():
        position = int(numpy.argmax(bad))
        raise ValueError(
            f"Column {name!r} should hold numbers but holds {_cell(series.iloc[position])} "
            f"({_where(series.index, position)})."
        )
    _check_range(series, name, values)
    return values


def _standardised(values, spec, series):
    """(values - mean) / scale, checked to fit float32."""
    scaled = (values - spec["mean"]) / spec["scale"]
    with numpy.errstate(invalid="ignore"):
        big = numpy.abs(scaled) > FLOAT32_MAX
    if big.any():
        position = int(numpy.argmax(big))
        raise ValueError(f"Value {str(series.iloc[position]).strip()} in column {spec['name']!r} "
                         f"({_where(series.index, position)}) is too far from the training values (mean "
                         f"{spec['mean']:.4g}, spread {spec['scale']:.4g}) to be represented in float32.")
    return scaled


def _money_hint(text):
    return (" (numbers written with a currency sign; remove the sign: 577,402 and 577402 are read as "
            "numbers)") if _MONEY.fullmatch(str(text).strip()) else ""


# ----- task choice ----------------------------------------------------------------------------


def infer_task(series):
    """("classification" or "regression", the reason in words) for a target column.

    Text, boolean or categorical targets, and whole numbers with at most 20 distinct values, are
    classification; other numbers are regression. Numbers with a few text cells among them are a
    ValueError naming the cells: a regression target cannot hold text.
    """
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
        whole = bool(numpy.all(numpy.mod(numbers, 1) == 0))
        if whole and distinct <= MAX_INTEGER_CLASSES:
            return "classification", (f"target {name!r} holds whole numbers with {distinct} distinct values "
                                      f"(at most {MAX_INTEGER_CLASSES})")
        kind = "whole numbers" if whole else "numbers"
        return "regression", f"target {name!r} holds {kind} with {distinct} distinct values"
    labels = values.map(_label_key)
    distinct = labels.nunique()
    if _mostly(bad, values):
        observed = numbers[~numpy.isnan(numbers)]
        few_whole = numpy.all(numpy.mod(observed, 1) == 0) and numpy.unique(observed).size <= MAX_INTEGER_CLASSES
        if not few_whole:
            raise ValueError(_numeric_except(values, name, bad))
    if set(labels.str.lower()) <= {"true", "false"}:
        return "classification", f"target {name!r} is true/false"
    return "classification", f"target {name!r} holds text, {distinct} distinct labels"


def _numeric_except(series, name, bad):
    positions = numpy.flatnonzero(bad)
    shown = _shown(list(dict.fromkeys(str(series.iloc[p]).strip() for p in positions)))
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
            "numbers)." if _MONEY.fullmatch(str(first).strip()) else " Is this the right column?")
    raise ValueError(f"Target column {series.name!r} holds text such as {_cell(first)} "
                     f"({_where(values.index, position)}) with {counts}.{hint}")


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

        keys = pandas.Series(list(labels), dtype=object).map(_label_key)
        codes = pandas.factorize(keys, use_na_sentinel=False)[0]
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
        if labels is not None and max(len(group) for group in groups) * validation_fraction < 1.5:
            single = sum(len(group) == 1 for group in groups)
            if single == len(groups):
                detail = f"each of the {len(groups)} classes has a single row, which must stay in training"
            else:
                detail = (f"{single} of the {len(groups)} classes have a single row, which must stay in training, "
                          "and the others are too small to give one")
            raise ValueError(
                f"A validation fraction of {validation_fraction} leaves no validation rows out of {n}: {detail} "
                "(each class is split on its own); give 0 for no validation, or more rows per class."
            )
        raise ValueError(
            f"A validation fraction of {validation_fraction} leaves no validation rows out of {n}; "
            "give a larger fraction, or 0 for no validation."
        )
    return rng.permutation(train), rng.permutation(validation)


# ----- features -------------------------------------------------------------------------------


def _id_like_name(name):
    text = str(name).strip()
    if text == "" or re.fullmatch(r"(?i)unnamed: \d+", text):  # the index column pandas writes
        return True
    if re.search(r"[a-z0-9](Id|ID)$", text):  # customerId, customerID
        return True
    words = [word for word in re.split(r"[\s_.\-]+", text.lower()) if word]
    if not words:
        return False
    return words[-1] in _ID_WORDS or "".join(words[-2:]) in _ID_WORDS


def id_columns(frame, columns=None, keep=()):
    """{column: reason} for the ``columns`` of ``frame`` (default: all) that look like IDs.

    An ID is a text column with a different value in every filled cell, or a column with an
    ID-like name (id, *_id, index, row, key, uuid, ...) holding whole numbers that are strictly
    increasing in row order or a shuffle of consecutive numbers (k, k+1, ..., k+n-1). At least 10
    filled cells either way. ``keep`` names columns never to call IDs. Call it on all the rows,
    before a split: a subset of 1..n is not consecutive.
    """
    columns = list(frame.columns if columns is None else columns)
    found = {}
    for name in columns:
        if name in keep:
            continue
        series = frame[name]
        present = series.dropna()
        if len(present) < ID_MIN_ROWS:
            continue
        kind, parsed = _kind(series)
        if kind == "numeric":
            if not _id_like_name(name):
                continue
            values, bad = parsed
            values = values[~numpy.isnan(values)]
            if bad.any() or values.size != len(present) or not numpy.all(numpy.mod(values, 1) == 0):
                continue
            low, high = values.min(), values.max()
            increasing = bool(numpy.all(numpy.diff(values) > 0))
            consecutive = high - low + 1 == values.size and numpy.unique(values).size == values.size
            if increasing or consecutive:
                numbering = "increasing from row to row" if increasing else "each number once"
                found[name] = (f"looks like a row ID (an ID-like name, whole numbers {_text(low)} to "
                               f"{_text(high)}, {numbering})")
        elif kind == "categorical" and not _is_bool(series):
            if _as_text(present).nunique() == len(present):
                found[name] = "looks like an ID (text, every value different)"
    return found


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

    def fit(self, frame, columns=None, drop=(), keep=(), ids=None):
        """Learn from the rows of ``frame`` (a pandas DataFrame); ``columns`` defaults to all.

        ``drop``: columns to leave out ("dropped on request"). ``keep``: columns never dropped as
        IDs. ``ids``: {column: reason} of ID columns found beforehand with ``id_columns`` (on all
        the rows, before a split); by default they are looked for in ``frame``.
        """
        columns = list(frame.columns if columns is None else columns)
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"No column {_shown(absent)} in the data; its columns are "
                             f"{', '.join(map(str, frame.columns))}.")
        for names, verb in ((drop, "drop"), (keep, "keep")):
            absent = [c for c in names if c not in columns]
            if absent:
                raise ValueError(f"Cannot {verb} column {_shown(absent)}: not a feature column; the feature "
                                 f"columns are {', '.join(map(str, columns))}.")
        both = [c for c in drop if c in keep]
        if both:
            raise ValueError(f"Column {_shown(both)} is both to drop and to keep; choose one.")
        if len(frame) == 0:
            raise ValueError("There are no rows to learn the preprocessing from.")
        if ids is None:
            ids = id_columns(frame, [c for c in columns if c not in drop], keep)
        specs, dropped, missing, truncated = [], {}, {}, {}
        for name in columns:
            if name in drop:
                dropped[name] = "dropped on request"
                continue
            series = frame[name]
            count = int(series.isna().sum())
            if count:
                missing[name] = count
            present = series.dropna()
            if present.empty:
                dropped[name] = "every value is missing"
                continue
            if name in ids and name not in keep:
                dropped[name] = ids[name]
                continue
            kind, parsed = _kind(series)
            if kind == "categorical":
                spec, reason = self._fit_categorical(name, present, truncated)
            else:
                spec, reason = self._fit_numeric(name, series, kind, parsed)
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
    def _fit_numeric(name, series, kind, parsed):
        values, bad = parsed
        word = "numbers" if kind == "numeric" else "dates (YYYY-MM-DD)"
        _stray_cells(series, name, bad, word)
        _check_range(series, name, values)
        observed = values[~numpy.isnan(values)]
        if observed.size == 0:
            return None, "every value is missing"
        distinct = numpy.unique(observed)
        if distinct.size == 1:
            shown = _text(distinct[0]) if kind == "numeric" else str(series.dropna().iloc[0]).strip()
            return None, f"constant (every value is {shown})"
        median = float(numpy.median(observed))
        filled = numpy.where(numpy.isnan(values), median, values)
        mean = float(filled.mean())
        scale = float(filled.std())
        if not (math.isfinite(mean) and math.isfinite(scale)):
            raise ValueError(f"Column {name!r} holds numbers too large to standardise in float64; rescale it.")
        return {"name": name, "kind": kind, "fill": median, "mean": mean,
                "scale": scale if scale > 0 else 1.0}, None

    def _fit_categorical(self, name, present, truncated):
        counts = _as_text(present).value_counts()
        if len(counts) == 1:
            return None, f"constant (every value is {counts.index[0]!r})"
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
        """One name per output column: the numeric or date column, or ``column=category``."""
        self._require_fitted()
        names = []
        for spec in self.columns:
            if spec["kind"] == "categorical":
                names.extend(f"{spec['name']}={category}" for category in spec["categories"])
            else:
                names.append(spec["name"])
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

    def transform(self, frame, warn_truncated=True):
        """``frame`` as a float32 array (rows, len(output_names)).

        Warns about categories outside those kept in training (``warn_truncated=False`` leaves out
        the columns cut to the most frequent categories, as on the training rows themselves) and
        about cells of a number or date column that are not one (read as missing, as in ``fit``);
        when they are more than half of the column's filled cells (the column does not hold
        numbers), or a value is too large for float32, it is a ValueError naming the first."""
        self._require_fitted()
        self.check_columns(frame)
        parts = []
        for spec in self.columns:
            series = frame[spec["name"]]
            if spec["kind"] == "categorical":
                parts.append(self._one_hot(spec, series, warn_truncated))
                continue
            if spec["kind"] == "numeric":
                values, bad = _parse_numbers(series)
                word, fill = "numbers", f"{spec['fill']:.4g}"
            else:
                values, bad = _parse_dates(series)
                word, fill = "dates (YYYY-MM-DD)", f"day {spec['fill']:.0f} after 1970-01-01"
            _stray_cells(series, spec["name"], bad, word, filled=f"the training median, {fill}",
                         limit=TRANSFORM_STRAY_FRACTION)
            _check_range(series, spec["name"], values)
            values = numpy.where(numpy.isnan(values), spec["fill"], values)
            parts.append(_standardised(values, spec, series)[:, None])
        return numpy.concatenate(parts, axis=1).astype(numpy.float32)

    def _one_hot(self, spec, series, warn_truncated):
        import pandas

        text = _as_text(series).fillna(spec["fill"])
        codes = pandas.Index(spec["categories"]).get_indexer(text)
        unseen = codes < 0
        name = spec["name"]
        if unseen.any() and (warn_truncated or name not in self.truncated):
            values = sorted(set(text[unseen]))
            if name in self.truncated:
                what = (f"categories outside the {len(spec['categories'])} most frequent kept in training "
                        f"(rare or new: {_shown(values)})")
            else:
                what = f"categories not seen in training ({_shown(values)})"
            _warn(f"Column {name!r}: {int(unseen.sum())} row(s) hold {what}; they are encoded as all zeros.", name)
        encoded = numpy.zeros((len(codes), len(spec["categories"])), dtype=numpy.float64)
        rows = numpy.flatnonzero(~unseen)
        encoded[rows, codes[rows]] = 1.0
        return encoded

    def fit_transform(self, frame, columns=None, **options):
        return self.fit(frame, columns, **options).transform(frame, warn_truncated=False)

    def to_config(self):
        """A plain JSON-ready dict holding everything ``transform`` needs (and the fit report)."""
        self._require_fitted()
        version = 2 if any(spec["kind"] == "date" for spec in self.columns) else 1
        return {"version": version, "max_categories": self.max_categories, "rows": self.rows,
                "columns": self.columns, "dropped": self.dropped, "missing": self.missing,
                "truncated": self.truncated}

    @classmethod
    def from_config(cls, config):
        _check_version(config, "feature preprocessing")
        try:
            preprocessor = cls(max_categories=config.get("max_categories", MAX_CATEGORIES))
            columns = [dict(spec) for spec in config["columns"]]
            for spec in columns:
                if spec["kind"] in ("numeric", "date"):
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
    features = preprocessor.to_config()
    model.metadata[METADATA_KEY] = {"version": features["version"], "features": features,
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
