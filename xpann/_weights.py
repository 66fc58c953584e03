"""Per-sample weights for weighted training and evaluation: checks and class weights."""

import math
import numbers

from .backend import host_array


def sample_weights(backend, sample_weight, class_weight, y, loss, outputs, dtype, rows, what="sample_weight"):
    """The device vector of per-sample weights (None when neither is given): ``sample_weight``
    times ``class_weight[class of the sample]``. Wrong lengths, negative or non-finite weights
    and classes outside the model's outputs are ValueErrors."""
    if sample_weight is None and class_weight is None:
        return None
    weights = None
    if sample_weight is not None:
        weights = host_array(backend.to_numpy(sample_weight) if backend.is_array(sample_weight) else sample_weight)
        if weights.dtype.kind not in "biuf" or weights.ndim != 1 or weights.shape[0] != rows:
            raise ValueError(f"{what} must be a 1-D array of {rows} numbers, one per sample, got shape "
                             f"{weights.shape} of {weights.dtype}.")
        weights = weights.astype("float64")
        if not (weights >= 0).all() or not host_array(weights < math.inf).all():
            raise ValueError(f"{what} must hold finite numbers >= 0.")
    if class_weight is not None:
        table = _class_table(class_weight, outputs)
        classes = _classes(backend, y, loss)
        factors = backend.to_numpy(backend.asarray(table)[classes])
        weights = factors if weights is None else weights * factors
    largest = float(host_array(weights).max())
    if largest * rows > FLOAT_MAX[str(dtype)] / LOSS_HEADROOM:
        raise ValueError(f"{what} holds a weight of {largest:g}, too large for {dtype} once multiplied by the "
                         "losses and summed; rescale the weights (only their ratios matter).")
    if largest == 0:
        raise ValueError(f"Every {what} is 0 (with the class weights): there is nothing to learn from.")
    return backend.asarray(weights, dtype=dtype)


FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}
LOSS_HEADROOM = 1e6  # per-sample losses up to a million stay finite once weighted and summed


def _class_table(class_weight, outputs):
    """A host list: weight of each class index (1 for classes not named)."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be a dict {{class index: weight}}, got {class_weight!r}.")
    count = max(outputs, 2)
    table = [1.0] * count
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < count:
            raise ValueError(f"class_weight names class {key!r}; the model's classes are 0 .. {count - 1}.")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
            raise ValueError(f"class_weight[{key}] must be a finite number >= 0, got {value!r}.")
        table[int(key)] = float(value)
    return table


def _classes(backend, y, loss):
    """Each sample's class index: the label, the one-hot argmax, or a 0/1 target."""
    xp = backend.xp
    if loss.sparse_targets:
        return y.reshape(-1)
    if y.ndim == 2 and y.shape[1] > 1:
        return xp.argmax(y, axis=1)
    classes = y.reshape(-1)
    host = backend.to_numpy(classes)
    if not ((host == 0) | (host == 1)).all():
        raise ValueError("class_weight needs class targets (labels, one-hot rows or 0/1 values); these "
                         "targets are other numbers, so give sample_weight instead.")
    return classes.astype("int64")
