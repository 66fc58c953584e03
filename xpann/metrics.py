"""Metrics accumulated on the device over batches and read on the host once per epoch.

``update(backend, y_true, y_pred)`` adds a batch to device sums without a host sync (the
element count is kept on the host); ``result()`` reads the sums once; ``reset()`` starts over.
A sum may be 0-d or hold one entry per output column; ``combine`` gets it as a float or a list.
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
        self._backend = None

    def update(self, backend, y_true, y_pred):
        self._backend = backend  # batch_sums may use its xp
        batch = self.batch_sums(y_true, y_pred)
        self._count += self.batch_count(y_true)
        if self._sums is None:
            self._sums = list(batch)
        else:
            self._sums = [total + part for total, part in zip(self._sums, batch)]

    def result(self):
        if self._sums is None:
            return float("nan")
        return self.combine([self._backend.to_numpy(total).tolist() for total in self._sums], self._count)

    def batch_count(self, y_true):
        """How many entries the batch adds to the count (every target entry by default)."""
        return y_true.size

    def reduce(self, world, backend):
        """Sum the running sums and the count over the ranks of ``world`` (data-parallel training,
        once per epoch): one all-reduce of one flat float64 vector."""
        xp = backend.xp
        parts = [xp.asarray(total, dtype="float64").reshape(-1) for total in (self._sums or [])]
        flat = xp.concatenate(parts + [xp.asarray([float(self._count)], dtype="float64")])
        world.allreduce(flat, backend)
        start, sums = 0, []
        for total, part in zip(self._sums or [], parts):
            sums.append(flat[start:start + part.size].reshape(xp.asarray(total).shape))
            start += part.size
        self._sums = sums if self._sums is not None else None
        self._count = int(round(float(backend.to_numpy(flat[-1:])[0])))
        self._backend = backend

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
    """1 - SS_res / SS_tot per output column, averaged over the columns (the uniform average of
    scikit-learn's r2_score and Keras's R2Score). Running sums per column of residual^2, d and
    d^2 with d = y - shift, the shift being the first batch's column means, so that SS_tot does
    not cancel catastrophically for targets far from 0. NaN when a column's targets are constant."""

    name = "r2"

    def reset(self):
        super().reset()
        self._shift = None

    def batch_count(self, y_true):
        return y_true.shape[0]

    def batch_sums(self, y_true, y_pred):
        y = y_true.astype("float64")
        r = y_pred.astype("float64") - y
        if self._shift is None:
            if not y.shape[0]:  # no rows yet (a data-parallel rank's empty share): nothing to add
                return tuple(r.sum(axis=0) for _ in range(3))
            self._shift = y.mean(axis=0)
        d = y - self._shift
        return (r * r).sum(axis=0), d.sum(axis=0), (d * d).sum(axis=0)

    def reduce(self, world, backend):
        """Move each rank's sums to the shift s0 of the first rank that had rows before summing:
        sum(d') = sum(d) + n (s - s0), sum(d'^2) = sum(d^2) + 2 (s - s0) sum(d) + n (s - s0)^2
        (a rank without rows has no shift and sums of 0)."""
        xp = backend.xp
        shifts = world.allgather(None if self._shift is None else backend.to_numpy(self._shift).tolist(),
                                 what="the gather of the r2 metric's shifts")
        shift = next((value for value in shifts if value is not None), None)
        if shift is not None:
            s0 = xp.asarray(shift, dtype="float64")
            if self._shift is not None:  # a rank without rows has sums of 0: nothing to move
                move = self._shift - s0
                residuals, total, total_sq = self._sums
                self._sums = [residuals, total + self._count * move,
                              total_sq + 2 * move * total + self._count * move * move]
            self._shift = s0
        super().reduce(world, backend)

    def combine(self, sums, count):
        columns = [sums] if not isinstance(sums[0], list) else [list(c) for c in zip(*sums)]
        scores = []
        for ss_res, total, total_sq in columns:
            ss_tot = total_sq - total * total / count
            if not ss_tot > 0:
                return float("nan")
            scores.append(1 - ss_res / ss_tot)
        return sum(scores) / len(scores)


def _predicted_and_true(metric, y_true, y_pred):
    """(predicted class, true class) as int64 vectors and the number of classes, for a sparse,
    one-hot or binary (one sigmoid output) target."""
    if metric.kind == "binary":
        predicted = (y_pred > metric.threshold).reshape(-1).astype("int64")
        return predicted, (y_true > 0.5).reshape(-1).astype("int64"), 2
    truth = y_true.argmax(axis=-1) if metric.kind == "categorical" else y_true.reshape(-1)
    return y_pred.argmax(axis=-1), truth.astype("int64"), y_pred.shape[-1]


class _ClassCounts(Metric):
    """Per-class true positives TP, predicted P and actual A counts, summed over batches; with two
    classes the score of class 1 (``average="binary"``), else the mean over the classes that occur
    in the targets or the predictions (``"macro"``), as scikit-learn. A class never predicted
    scores 0 (scikit-learn's zero_division)."""

    average = "binary"

    def __init__(self, kind="sparse", threshold=0.5):
        self.kind, self.threshold = kind, threshold
        self._labels = None  # the class indices, made once on the device
        super().__init__()

    def batch_count(self, y_true):
        return y_true.shape[0]

    def batch_sums(self, y_true, y_pred):
        predicted, truth, classes = _predicted_and_true(self, y_true, y_pred)
        if self._labels is None or self._labels.shape[0] != classes:
            self._labels = self._backend.xp.arange(classes)
        labels = self._labels
        hit_predicted, hit_true = predicted[:, None] == labels, truth[:, None] == labels
        return ((hit_predicted & hit_true).sum(axis=0, dtype="float64"), hit_predicted.sum(axis=0, dtype="float64"),
                hit_true.sum(axis=0, dtype="float64"))

    def combine(self, sums, count):
        tp, predicted, actual = ([v] if not isinstance(v, list) else v for v in sums)
        scores = [self.score(t, p, a) for t, p, a in zip(tp, predicted, actual)]
        if self.average == "binary" and len(scores) == 2:
            return scores[1]
        present = [score for score, p, a in zip(scores, predicted, actual) if p + a > 0]
        return sum(present) / len(present) if present else float("nan")


class Precision(_ClassCounts):
    """TP / P."""

    name = "precision"

    @staticmethod
    def score(tp, predicted, actual):
        return tp / predicted if predicted else 0.0


class Recall(_ClassCounts):
    """TP / A."""

    name = "recall"

    @staticmethod
    def score(tp, predicted, actual):
        return tp / actual if actual else 0.0


class F1Score(_ClassCounts):
    """2 TP / (P + A), the harmonic mean of precision and recall."""

    name = "f1"

    @staticmethod
    def score(tp, predicted, actual):
        return 2 * tp / (predicted + actual) if predicted + actual else 0.0


class MacroPrecision(Precision):
    name, average = "macro_precision", "macro"


class MacroRecall(Recall):
    name, average = "macro_recall", "macro"


class MacroF1Score(F1Score):
    name, average = "macro_f1", "macro"


class AUC(Metric):
    """Area under the ROC curve, exact: (sum of the positives' ranks - P (P + 1) / 2) / (P N), ties
    sharing their mean rank (Mann-Whitney). Two classes: the score of class 1; more: the mean of
    each class against the rest (scikit-learn's roc_auc_score with multi_class="ovr", macro). The
    epoch's scores are kept on the device and ranked once, at ``result``."""

    name = "auc"

    def __init__(self, kind="sparse", threshold=0.5):
        self.kind, self.threshold = kind, threshold
        super().__init__()

    def reset(self):
        super().reset()
        self._scores, self._truth = [], []

    def update(self, backend, y_true, y_pred):
        self._backend = backend
        if self.kind == "binary":
            self._scores.append(y_pred.reshape(-1, 1).astype("float64"))
            self._truth.append((y_true > 0.5).reshape(-1).astype("int64"))
        else:
            self._scores.append(y_pred.astype("float64"))
            truth = y_true.argmax(axis=-1) if self.kind == "categorical" else y_true.reshape(-1)
            self._truth.append(truth.astype("int64"))
        self._count += y_true.shape[0]

    def reduce(self, world, backend):
        raise ValueError("The auc metric is not available in data-parallel training yet (it ranks every score of "
                         "the epoch); use accuracy, precision, recall or f1 there.")

    def result(self):
        if not self._scores:
            return float("nan")
        xp = self._backend.xp
        scores, truth = xp.concatenate(self._scores), xp.concatenate(self._truth)
        if scores.shape[1] == 1 or scores.shape[1] == 2:
            column = scores[:, -1]
            return _rank_auc(xp, column, truth == 1)
        values = [_rank_auc(xp, scores[:, c], truth == c) for c in range(scores.shape[1])]
        values = [v for v in values if v == v]
        return sum(values) / len(values) if values else float("nan")


def _rank_auc(xp, scores, positive):
    """ROC AUC of ``scores`` for the boolean ``positive`` by mean ranks; NaN with one kind only."""
    positives = int(positive.sum())
    negatives = positive.shape[0] - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = xp.argsort(scores, kind="stable")
    ranked = scores[order]
    starts_group = xp.concatenate([xp.ones(1, dtype=bool), ranked[1:] != ranked[:-1]])
    group = xp.cumsum(starts_group) - 1
    sizes = xp.bincount(group)
    ends = xp.cumsum(sizes)
    mean_rank = (ends - sizes + 1 + ends) / 2.0  # 1-based positions ends - size + 1 .. ends
    rank_sum = float((mean_rank[group] * positive[order]).sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


CLASS_METRICS = {cls.name: cls for cls in (Precision, Recall, F1Score, MacroPrecision, MacroRecall, MacroF1Score,
                                           AUC)}

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


def _target_kind(loss, name):
    """("sparse" | "categorical" | "binary", the decision threshold) for a classification loss."""
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return "sparse", 0.5
    if isinstance(loss, losses.CategoricalCrossentropy):
        return "categorical", 0.5
    if isinstance(loss, losses.BinaryCrossentropy):
        return "binary", 0.0 if loss.from_logits else 0.5
    raise ValueError(f"{name} needs a classification loss (binary, categorical or sparse categorical "
                     f"crossentropy), not {getattr(loss, 'name', loss)}; for regression use mae, mse, rmse or r2.")


def get(identifier, loss):
    """A Metric from a name or an instance; "accuracy", precision, recall, f1 and auc follow the
    loss's kind of target."""
    if isinstance(identifier, str) and identifier.strip().lower() in CLASS_METRICS:
        name = identifier.strip().lower()
        kind, threshold = _target_kind(loss, name)
        return CLASS_METRICS[name](kind=kind, threshold=threshold)
    if isinstance(identifier, str) and identifier.strip().lower() in ("accuracy", "acc"):
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            return SparseCategoricalAccuracy()
        if isinstance(loss, losses.CategoricalCrossentropy):
            return CategoricalAccuracy()
        if isinstance(loss, losses.BinaryCrossentropy):
            return BinaryAccuracy(threshold=0.0 if loss.from_logits else 0.5)
        raise ValueError(
            f"accuracy needs a classification loss (binary, categorical or sparse categorical "
            f"crossentropy), not {getattr(loss, 'name', loss)}; for regression use mae, mse, rmse or r2."
        )
    return METRICS.get(identifier)
