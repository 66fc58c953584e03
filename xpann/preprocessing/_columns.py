"""What a column is: numbers, dates or categories, and whether it is an ID to leave out."""

import re

import numpy

from ._cells import (STRAY_FRACTION, _as_text, _is_bool, _is_numeric, _looks_like_dates, _mostly, _parse_dates,
                     _parse_numbers, _text, _whole)

ID_MIN_ROWS = 10
_ID_WORDS = {"id", "ids", "idx", "index", "key", "pk", "uuid", "guid", "row", "rowid", "rownum", "rownumber",
             "rowno", "recordid"}


def _kind(series):
    """("numeric" | "date" | "categorical", the parsed (values, bad) or None) for a feature column."""
    if _is_bool(series):
        return "categorical", None
    if _is_numeric(series):
        return "numeric", _parse_numbers(series)
    if not _too_many_strays(series):
        parsed = _parse_numbers(series)
        if _mostly(parsed[1], series):
            return "numeric", parsed
    if _looks_like_dates(series):
        dated = _parse_dates(series)
        if _mostly(dated[1], series):
            return "date", dated
    return "categorical", None


def _too_many_strays(series):
    """True when the first filled cells alone hold more values that are not numbers than a number
    column may (STRAY_FRACTION of all its filled cells): the column is not one, whatever the rest
    holds, and a text column is not parsed in full. (Whether a cell is a number depends on that
    cell alone, so this is the answer the whole column gives.)"""
    present = series.dropna()
    allowed = int(STRAY_FRACTION * len(present))  # more stray cells than this: not numbers
    first = min(64, len(present))
    if first == 0 or int(_parse_numbers(present.iloc[:first])[1].sum()) * 2 < first:
        return False  # mostly numbers so far: parse the column
    size = allowed + 1
    while size < len(present):  # longer and longer beginnings, until they hold too many or are the column
        if int(_parse_numbers(present.iloc[:size])[1].sum()) > allowed:
            return True
        size *= 2
    return False


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
            if bad.any() or values.size != len(present) or not _whole(values):
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
