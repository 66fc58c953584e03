"""What a cell holds: numbers (``1,699.0`` included), ISO dates, class labels and category keys.

pandas is imported only inside the functions that need it."""

import math
import re

import numpy

STRAY_FRACTION = 0.05  # a column of numbers or dates may hold this share of other values, read as missing

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")  # 1,699.0 (thousands separated by commas)
_MONEY = re.compile(r"[+-]?[$€£¥]\s*[\d.,]+|[\d.,]+\s*[$€£¥]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")


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


def _has_currency_sign(value):
    """True for a number written with a currency sign: "$1,200", "12 €"."""
    return bool(_MONEY.fullmatch(str(value).strip()))


def _whole(values):
    """True when every value is a whole number."""
    return bool(numpy.all(numpy.mod(values, 1) == 0))


# ----- reading numbers and dates --------------------------------------------------------------


def _is_numeric(series):
    from pandas.api import types

    return types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype)


def _is_bool(series):
    from pandas.api import types

    return types.is_bool_dtype(series.dtype)


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


def _looks_like_dates(series):
    """True when at least half of the first 50 filled cells are written as ISO dates."""
    sample = series.dropna().head(50).map(str).str.strip()
    return bool(len(sample)) and sample.str.fullmatch(_DATE.pattern).mean() >= 0.5


def _mostly(bad, series):
    """True when the filled cells of ``series`` are all good but at most STRAY_FRACTION of them."""
    filled = int(series.notna().sum())
    return filled > int(bad.sum()) and bad.sum() <= STRAY_FRACTION * filled
