"""Checks and converts user data at the API boundary: once per call, never per batch.

Host data (numpy arrays, lists, data frames) are checked and converted on the host and then
uploaded once; arrays already on the model's backend are checked where they are.
"""

from .backend import host_backend

HOST = host_backend()


def _as_array(backend, value, what, expected):
    """``value`` as a host array (host data) or an array of ``backend`` (device data)."""
    if value is None:
        raise ValueError(f"{what} is None; give {expected}.")
    if backend.is_array(value) or HOST.is_array(value):
        return value
    on_device = hasattr(value, "__cuda_array_interface__")  # another device's array: the backend moves it
    to_numpy = getattr(value, "to_numpy", None)
    if to_numpy is not None and not on_device:  # a pandas frame or series; nullable columns as float
        array = to_numpy()
        if array.dtype == object:
            try:
                array = to_numpy(dtype="float64", na_value=float("nan"))
            except (TypeError, ValueError):
                pass  # text: reported as such below
        return array
    try:
        return backend.asarray(value) if on_device else HOST.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be a numeric array or array-like ({error}).") from None


def _module(backend, array):
    return HOST.xp if HOST.is_array(array) else backend.xp


def _check_numeric(array, what):
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must hold numbers, but its dtype is {array.dtype}; encode text columns as numbers first."
        )


def _finite_as(backend, array, dtype, what):
    """``array`` converted to ``dtype`` (on its own side), checked to hold only finite values."""
    xp = _module(backend, array)
    with HOST.xp.errstate(over="ignore", invalid="ignore"):
        converted = xp.asarray(array, dtype=dtype)
    if not bool(xp.isfinite(converted).all()):
        if array.dtype.kind == "f" and not bool(xp.isfinite(array).all()):
            raise ValueError(f"{what} contains NaN or infinite values; impute or drop them first.")
        raise ValueError(
            f"{what} holds values too large for {dtype} (largest magnitude "
            f"{float(xp.abs(array).max()):g}); scale it first."
        )
    return converted


def features(backend, x, dtype, expected_width=None, what="x"):
    """``x`` as a 2-D device array of ``dtype`` with ``expected_width`` columns."""
    array = _as_array(backend, x, what, "a numeric array of shape (samples, features)")
    _check_numeric(array, what)
    if array.ndim != 2:
        hint = ""
        if array.ndim == 1:
            one_row = expected_width is not None and array.shape[0] == expected_width != 1
            hint = (f" For one sample of {expected_width} features use {what}.reshape(1, -1)." if one_row
                    else f" Reshape a single feature with {what}.reshape(-1, 1).")
        raise ValueError(f"{what} must be 2-D (samples, features), got shape {tuple(array.shape)}.{hint}")
    if array.shape[0] == 0:
        raise ValueError(f"{what} has no samples.")
    if expected_width is not None and array.shape[1] != expected_width:
        raise ValueError(
            f"{what} has {array.shape[1]} features but the model expects {expected_width}."
        )
    return backend.asarray(_finite_as(backend, array, dtype, what), dtype=dtype)


def targets(backend, y, loss, output_width, dtype, what="y"):
    """``y`` shaped for ``loss``: integer labels in [0, output_width) for a sparse loss,
    otherwise (samples, output_width) values of ``dtype``."""
    array = _as_array(backend, y, what, "the targets, one per row of x")
    _check_numeric(array, what)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"{what} has no samples; give one target per row of x.")
    xp = _module(backend, array)
    if loss.sparse_targets:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(
                f"{what} for {loss.name} must be 1-D integer class labels, got shape {tuple(array.shape)}; "
                "for one-hot targets use categorical_crossentropy."
            )
        if array.dtype.kind == "f":
            if not bool(xp.isfinite(array).all()):
                raise ValueError(f"{what} contains NaN or infinite values; impute or drop them first.")
            if not bool((array == xp.floor(array)).all()):
                raise ValueError(f"{what} for {loss.name} must hold whole-number class labels.")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high >= output_width:
            raise ValueError(
                f"{what} holds labels from {low:g} to {high:g}, but the output layer has "
                f"{output_width} units, so labels must be in [0, {output_width})."
            )
        return backend.asarray(xp.asarray(array, dtype="int64"))
    if array.ndim == 1 and output_width == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != output_width:
        hint = ""
        if array.ndim == 1 and loss.name == "categorical_crossentropy":
            hint = " For integer class labels use sparse_categorical_crossentropy."
        raise ValueError(
            f"{what} has shape {tuple(array.shape)} but the model outputs {output_width} value(s) "
            f"per sample, so {what} must have shape (samples, {output_width}).{hint}"
        )
    array = _finite_as(backend, array, dtype, what)
    if loss.name == "binary_crossentropy":
        if float(array.min()) < 0 or float(array.max()) > 1:
            raise ValueError(f"{what} for binary_crossentropy must hold values in [0, 1] (0/1 labels).")
    return backend.asarray(array, dtype=dtype)


def same_length(x, y, what_x="x", what_y="y"):
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what_x} has {x.shape[0]} samples but {what_y} has {y.shape[0]}; they must match.")
