"""Warnings and errors that point at cells: where a row is, how values are shown, and the check
that values fit float32."""

import warnings

import numpy

from ._cells import _scalar

FLOAT32_MAX = float(numpy.finfo(numpy.float32).max)


class PreprocessingWarning(UserWarning):
    """Data the preprocessing handled by a rule: unseen categories, or cells that are not numbers
    or dates in such a column (read as missing). ``column`` names the column."""

    def __init__(self, message, column=None):
        super().__init__(message)
        self.column = column


def _warn(message, column):
    warnings.warn(PreprocessingWarning(message, column), stacklevel=3)


def _shown(values, limit=5):
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _cell(value):
    """One cell for a message: text quoted, numbers and true/false as plain Python values."""
    return repr(value) if isinstance(value, str) else repr(_scalar(value))


def _distinct_cells(series, positions):
    """The distinct texts of the cells at ``positions``, without surrounding spaces, in row order."""
    return list(dict.fromkeys(str(series.iloc[p]).strip() for p in positions))


def _where(index, position):
    """Where a row is, in words: "line 7" when the index is named "line", else "row 7"."""
    return f"{index.name or 'row'} {index[position]}"


def _lines(index, positions, limit=5):
    """ "line 7" or "lines 7, 9, 12 and 3 more" for the rows at ``positions``."""
    word = index.name or "row"
    shown = [str(index[p]) for p in positions[:limit]]
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"{word} {shown[0]}" if len(positions) == 1 else f"{word}s {', '.join(shown)}{more}"


def _first_beyond_float32(values):
    """The position of the first value whose size is above FLOAT32_MAX (infinities included), or None."""
    with numpy.errstate(invalid="ignore"):
        big = numpy.abs(values) > FLOAT32_MAX
    return int(numpy.argmax(big)) if big.any() else None


def _check_range(series, name, values):
    """ValueError naming the first value that is infinite or too large for float32."""
    position = _first_beyond_float32(values)
    if position is None:
        return
    where = _where(series.index, position)
    if numpy.isinf(values[position]):
        raise ValueError(f"Column {name!r} holds an infinite value ({where}); replace it or leave the cell empty.")
    shown = str(series.iloc[position]).strip()
    raise ValueError(f"Value {shown} in column {name!r} ({where}) is too large for float32 (at most about "
                     "3.4e38); rescale the column or leave the cell empty.")
