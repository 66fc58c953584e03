"""Argument checks shared by the numeric classes: each raises ValueError saying what is allowed."""

import math
import numbers


def _number(name, value):
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return number


def finite(name, value):
    return _number(name, value)


def positive(name, value):
    number = _number(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return number


def non_negative(name, value):
    number = _number(name, value)
    if number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return number


def positive_or_none(name, value):
    return None if value is None else positive(name, value)


def fraction(name, value, high_inclusive=False):
    """A number in [0, 1), or [0, 1] when ``high_inclusive``."""
    number = _number(name, value)
    if not (0 <= number <= 1 if high_inclusive else 0 <= number < 1):
        raise ValueError(f"{name} must be in [0, {'1]' if high_inclusive else '1)'}, got {value!r}.")
    return number


def positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer() \
            or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


DTYPES = ("float32", "float64")


def float_dtype(dtype):
    """The name of a float dtype xpann computes in ("float32" or "float64"), from a name or a dtype."""
    name = getattr(dtype, "__name__", None) or str(dtype)  # "float64", numpy.float64, numpy.dtype
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; valid dtypes are {', '.join(DTYPES)}.")
    return name
