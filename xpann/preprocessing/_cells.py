"""What a cell holds: numbers (``1,699.0`` included), ISO dates, class labels and category keys.

pandas is imported only inside the functions that need it."""

import functools
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


_TRUE_FALSE = None


def _true_false_spellings():
    """Every spelling of true and false in any case ("TRUE", "fAlSe", ...)."""
    global _TRUE_FALSE
    if _TRUE_FALSE is None:
        import itertools

        _TRUE_FALSE = ["".join(letters) for word in ("true", "false")
                       for letters in itertools.product(*((c, c.upper()) for c in word))]
    return _TRUE_FALSE


def _as_text(series):
    """A Series of category keys; missing values stay missing."""
    import pandas
    from pandas.api import types

    if types.is_object_dtype(series.dtype) and types.infer_dtype(series, skipna=True) == "string":
        # Text (and missing cells): the keys are the cells, but true/false in any case.
        spelled = series.isin(_true_false_spellings()).to_numpy()
        keys = series.to_numpy(dtype=object, copy=True)
        if spelled.any():
            keys[spelled] = [value.lower().capitalize() for value in keys[spelled]]
        return pandas.Series(keys, index=series.index, name=series.name, dtype=object)
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
        return _text_label_key(str(value))
    return _text(value)


@functools.lru_cache(maxsize=1 << 16)
def _text_label_key(value):
    """``_label_key`` of a str (labels repeat: each distinct one is worked out once)."""
    number = _number_in(value)
    return value.strip() if number is None else _text(number)


def _sort_key(label):
    """Numeric labels first, by value; then text labels, alphabetically."""
    key = _label_key(label)
    number = _number_in(key)
    return (0, number, "") if number is not None else (1, 0.0, key)


def _has_currency_sign(value):
    """True for a number written with a currency sign: "$1,200", "12 €"."""
    return bool(_MONEY.fullmatch(str(value).strip()))


def _whole(values):
    """True when every value is a whole number (an infinity is not one)."""
    with numpy.errstate(invalid="ignore"):
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
    text = series[present]
    if _all_text(text):
        text = text.astype(str)  # the same cells as map(str), without a Python call per cell
    else:
        text = text.map(str)
    return present, text.str.strip()


def _all_text(series):
    """True when every value of ``series`` is a str (a text column without missing cells)."""
    from pandas.api import types

    if types.is_string_dtype(series.dtype) and not types.is_object_dtype(series.dtype):
        return not series.isna().any()
    return types.is_object_dtype(series.dtype) and types.infer_dtype(series, skipna=False) == "string"


# Cells that pandas.to_numeric might read as a number (a superset: anything else is surely NaN):
# digits with a sign, point and exponent, the infinity words, and (to be safe) a NUL character.
_MAYBE_NUMBER = (r"(?:[\s\x0b]*[+-]?[0-9.]*([eE][+-]?[0-9]*)?[\s\x0b]*"
                 r"|(?i:[\s\x0b]*[+-]?inf(inity)?[\s\x0b]*)|(?s:.*\x00.*))")
# Plain decimals of at most 15 digits: pandas reads them exactly (one correctly rounded division),
# as pyarrow's correctly rounded parser does.
_PLAIN_DECIMAL = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)"
_PLAIN_DIGITS = 15
_LONG_INTEGER = 19  # digits from which pandas may read an integer as uint64 (or not at all): the reference path


def _to_numeric(text):
    """``pandas.to_numeric(text, errors="coerce").astype(float64)`` as a NumPy array, for a Series
    of stripped text (no missing cells): the same values, cell for cell, computed without
    pandas' per-cell parse for the cells that are plain decimals (parsed by pyarrow) or surely
    not numbers (no parse at all)."""
    import pandas

    def reference():
        return numpy.array(pandas.to_numeric(text, errors="coerce").astype(numpy.float64), dtype=numpy.float64)

    if len(text) == 0:
        return reference()
    try:
        import pyarrow
        import pyarrow.compute
    except ImportError:  # pragma: no cover - pyarrow is a dependency of pandas 3 here
        return reference()
    plain = numpy.array(text.str.fullmatch(_PLAIN_DECIMAL), dtype=bool)
    if plain.any():
        plain &= text.str.count("[0-9]").to_numpy() <= _PLAIN_DIGITS
    maybe = ~plain
    if maybe.any():
        maybe[maybe] = text[maybe].str.fullmatch(_MAYBE_NUMBER).to_numpy(dtype=bool)
    other = ~plain & ~maybe
    if maybe.any() and (text[maybe].str.count("[0-9]").to_numpy() >= _LONG_INTEGER).any():
        return reference()
    values = numpy.full(len(text), numpy.nan)
    # pandas reads a column of whole numbers only (no point, exponent, failure) as integers;
    # any other cell makes every cell a float parse (a difference only for -0).
    floats = bool(other.any())
    if plain.any():
        cells = text[plain]
        try:
            parsed = pyarrow.compute.cast(pyarrow.array(cells.to_numpy(dtype=object), type=pyarrow.string()),
                                          pyarrow.float64())
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, ValueError, TypeError):
            return reference()
        values[plain] = parsed.to_numpy(zero_copy_only=False)
        floats = floats or bool(cells.str.contains(".", regex=False).any())
    if maybe.any():
        cells = text[maybe].to_numpy(dtype=object)
        if floats:
            cells = numpy.append(cells, "x")  # a cell that is not a number: the float parse, as for the column
        numbers = pandas.to_numeric(pandas.Series(cells, dtype=object), errors="coerce")
        if numbers.dtype.kind not in "iuf":
            return reference()
        floats = floats or numbers.dtype.kind == "f"
        values[maybe] = numbers.to_numpy(dtype=numpy.float64)[:int(maybe.sum())]
    if not floats and plain.any():
        values[plain] += 0.0  # whole numbers read as integers: -0 is 0
    return values


def _repeated_text(series, least=1000):
    """(codes, the distinct texts as a Series) for a text column of at least ``least`` cells that
    repeats its values (fewer distinct than half the cells; code -1 for missing), else None. The
    same distinct values give pandas.to_numeric the same column-wide choice (integers or floats)."""
    import pandas
    from pandas.api import types

    if len(series) < least or not types.is_object_dtype(series.dtype):
        return None
    codes, distinct = pandas.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    if len(distinct) * 2 >= len(series):
        return None
    distinct = pandas.Series(distinct, dtype=object)
    if types.infer_dtype(distinct, skipna=False) != "string":
        return None  # 1, 1.0 and True are one value to factorize but three texts
    return codes, distinct


def _parse_numbers(series):
    """(float64 values, mask of filled cells that are not numbers). Missing cells, the words
    NaN/nan, and the cells that are not numbers are NaN in the values."""
    import pandas

    if _is_numeric(series):
        return series.to_numpy(dtype=numpy.float64, na_value=numpy.nan), numpy.zeros(len(series), dtype=bool)
    if _is_bool(series):
        return numpy.full(len(series), numpy.nan), series.notna().to_numpy()
    repeated = _repeated_text(series)
    if repeated is not None:  # each distinct text parsed once: a cell's value depends on its text alone
        codes, distinct = repeated
        values, bad = _parse_numbers(distinct)
        filled = codes >= 0
        return numpy.where(filled, values[codes], numpy.nan), filled & bad[codes]
    values = numpy.full(len(series), numpy.nan)
    bad = numpy.zeros(len(series), dtype=bool)
    present, text = _present_text(series)
    numbers = _to_numeric(text)
    failed = numpy.isnan(numbers)
    if failed.any():
        cells = text[failed]
        failed[failed] = ((cells.str.lower() != "nan") & (cells != "")).to_numpy(dtype=bool)
    if failed.any():
        grouped = failed.copy()
        grouped[failed] = text[failed].str.fullmatch(_GROUPED_NUMBER.pattern).fillna(False).to_numpy(dtype=bool)
        if grouped.any():
            numbers[grouped] = pandas.to_numeric(text[grouped].str.replace(",", "", regex=False),
                                                 errors="coerce").astype(numpy.float64).to_numpy(dtype=numpy.float64)
            failed &= ~grouped
    values[present] = numbers
    bad[present] = failed
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
