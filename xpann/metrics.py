"""Metrics accumulated on the device over batches and read on the host once per epoch.

``update(backend, y_true, y_pred)`` adds a batch to device sums without a host sync (the
element count is kept on the host); ``result()`` reads the sums once; ``reset()`` starts over.
"""

from . import losses
from ._registry import Registry


class Metric:
    """Base class: device-side running sums, one float at the end."""

    name = "metric"

    def __init__(self):
        self.reset()

    def reset(self):
        self._sums = None
        self._count = 0

    def update(self, backend, y_true, y_pred):
        batch = self.batch_sums(y_true, y_pred)
        self._count += y_true.size
        if self._sums is None:
            self._sums = list(batch)
        else:
            self._sums = [total + part for total, part in zip(self._sums, batch)]

    def result(self):
        if self._sums is None:
            return float("nan")
        return self.combine([float(total) for total in self._sums], self._count)

    def batch_sums(self, y_true, y_pred):
        """0-d device arrays to add up over batches (float64, so counts stay exact)."""
        raise NotImplementedError

    def combine(self, sums, count):
        """The metric from the summed batch sums and the number of target entries."""
        raise NotImplementedError


class SparseCategoricalAccuracy(Metric):
    """mean(argmax(p) == label)."""

    name = "accuracy"

    def batch_sums(self, y_true, y_pred):
        return ((y_pred.argmax(axis=-1) == y_true).sum(dtype="float64"),)

    def combine(self, sums, count):
        return sums[0] / count


class CategoricalAccuracy(SparseCategoricalAccuracy):
    """mean(argmax(p) == argmax(y))."""

    def update(self, backend, y_true, y_pred):
        super().update(backend, y_true.argmax(axis=-1), y_pred)


class BinaryAccuracy(Metric):
    """mean((p > threshold) == (y > 0.5))."""

    name = "accuracy"

    def __init__(self, threshold=0.5):
        super().__init__()
        self.threshold = threshold

    def batch_sums(self, y_true, y_pred):
        return (((y_pred > self.threshold) == (y_true > 0.5)).sum(dtype="float64"),)

    def combine(self, sums, count):
        return sums[0] / count


class MeanSquaredError(Metric):
    """mean((y_pred - y_true)^2)."""

    name = "mse"

    def batch_sums(self, y_true, y_pred):
        r = (y_pred - y_true).astype("float64")
        return ((r * r).sum(),)

    def combine(self, sums, count):
        return sums[0] / count


class RootMeanSquaredError(MeanSquaredError):
    """sqrt(mean((y_pred - y_true)^2))."""

    name = "rmse"

    def combine(self, sums, count):
        return (sums[0] / count) ** 0.5


class MeanAbsoluteError(Metric):
    """mean(|y_pred - y_true|)."""

    name = "mae"

    def batch_sums(self, y_true, y_pred):
        return (abs(y_pred - y_true).sum(dtype="float64"),)

    def combine(self, sums, count):
        return sums[0] / count


class R2Score(Metric):
    """1 - SS_res / SS_tot over all outputs, from running sums of y, y^2 and residual^2."""

    name = "r2"

    def batch_sums(self, y_true, y_pred):
        y = y_true.astype("float64")
        r = y_pred.astype("float64") - y
        return (r * r).sum(), y.sum(), (y * y).sum()

    def combine(self, sums, count):
        ss_res, total, total_sq = sums
        ss_tot = total_sq - total * total / count
        if ss_tot <= 0:
            return float("nan")
        return 1 - ss_res / ss_tot


METRICS = Registry(
    "metric",
    {
        "accuracy": SparseCategoricalAccuracy,
        "acc": SparseCategoricalAccuracy,
        "mse": MeanSquaredError,
        "mean_squared_error": MeanSquaredError,
        "rmse": RootMeanSquaredError,
        "root_mean_squared_error": RootMeanSquaredError,
        "mae": MeanAbsoluteError,
        "mean_absolute_error": MeanAbsoluteError,
        "r2": R2Score,
    },
    base=Metric,
)


def get(identifier, loss):
    """A Metric from a name or an instance; "accuracy" follows the loss's kind of target."""
    if isinstance(identifier, str) and identifier.strip().lower() in ("accuracy", "acc"):
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            return SparseCategoricalAccuracy()
        if isinstance(loss, losses.CategoricalCrossentropy):
            return CategoricalAccuracy()
        if isinstance(loss, losses.BinaryCrossentropy):
            return BinaryAccuracy(threshold=0.0 if loss.from_logits else 0.5)
        raise ValueError(
            f"accuracy needs a classification loss (binary, categorical or sparse categorical "
            f"crossentropy), not {loss.name}; for regression use mae, mse, rmse or r2."
        )
    return METRICS.get(identifier)
