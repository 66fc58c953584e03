"""What ``fit`` adds in a world of several ranks: the checks before training, the share of each
global batch, the gradient all-reduce in the step plan (whole after backward, or in buckets
during it), synchronised batch statistics, and the
once-per-epoch sums of losses and metrics."""

import hashlib
import json
import numbers
import os
import zlib

OVERLAP_VARIABLE = "XPANN_DIST_OVERLAP"
DEFAULT_OVERLAP = False
"""Whether the gradient is summed in buckets while backward runs (``XPANN_DIST_OVERLAP`` = 1) or
whole after it (0): where the world ``overlaps`` (MPI); NCCL sums it whole either way."""
BUCKET_BYTES = 256 * 1024
"""A bucket of the overlapped gradient sum is posted once the layers backward has finished since
the last one hold at least this many bytes of gradient (and at the first trainable layer)."""


def overlap_requested():
    """``XPANN_DIST_OVERLAP``: 1 sums the gradient in buckets during backward, 0 after it (unset:
    ``DEFAULT_OVERLAP``)."""
    text = os.environ.get(OVERLAP_VARIABLE, "").strip()
    if not text:
        return DEFAULT_OVERLAP
    if text not in ("0", "1"):
        raise ValueError(f"{OVERLAP_VARIABLE} must be 0 (sum the gradient after backward) or 1 (in buckets "
                         f"during backward), got {text!r}.")
    return text == "1"


def digest(value):
    """A digest of ``value``'s JSON (keys sorted; what JSON cannot write, by its repr)."""
    text = json.dumps(value, sort_keys=True, default=repr, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def compare(world, facts, what=None):
    """Raise the same ValueError on every rank of ``world`` when the ranks differ in any of
    ``facts`` (name: a JSON-ready value). One all-gather of digests; only when they differ, a
    second of the differing facts themselves, to say what differs and on which rank."""
    if world.size == 1:
        return
    mine = {key: digest(value) for key, value in facts.items()}
    every = world.allgather(mine, what=what or "the check that every rank trains alike")
    differ = [key for key in facts if len({digests[key] for digests in every}) > 1]
    if not differ:
        return
    key = differ[0]
    values = world.allgather(facts[key], what="the report of what differs between the ranks")
    also = f" (also different: {', '.join(differ[1:])})" if differ[1:] else ""
    if all(_scalar(value) for value in values):
        listed = ", ".join(f"rank {r}: {value!r}" if isinstance(value, str) else f"rank {r}: {value}"
                           for r, value in enumerate(values))
        raise ValueError(f"Data-parallel training needs the same {key} on every rank, got {listed}{also}.")
    details = []
    for r, value in enumerate(values):
        if digest(value) != digest(values[0]):
            path, theirs, first = _difference(value, values[0])
            details.append(f"rank {r} has {key}{path} = {_short(theirs)} where rank 0 has {_short(first)}")
    raise ValueError(f"Data-parallel training needs the same {key} on every rank: {'; '.join(details)}{also}.")


def _scalar(value):
    return value is None or isinstance(value, (bool, numbers.Number, str))


def _short(value, limit=120):
    text = "(nothing)" if value is _MISSING else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_MISSING = object()


def _difference(a, b, path=""):
    """(path, a's part, b's part) of the first place where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b or digest(a[key]) != digest(b[key]):
                return _difference(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}[{key!r}]")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if digest(x) != digest(y):
                return _difference(x, y, f"{path}[{i}]")
    return path, a, b


def _plain(value):
    if _scalar(value):
        return True
    return isinstance(value, (list, tuple)) and len(value) <= 100 and all(_scalar(v) for v in value)


def describe_callbacks(callbacks):
    """Each callback's class and settings (its ``get_config()``, else its public plain attributes),
    to compare across ranks."""
    if not isinstance(callbacks, (list, tuple)):
        return repr(type(callbacks))
    described = []
    for callback in callbacks:
        kind = f"{type(callback).__module__}.{type(callback).__qualname__}"
        get_config = getattr(callback, "get_config", None)
        if callable(get_config):
            settings = get_config()
        else:
            settings = {name: (list(value) if isinstance(value, tuple) else value)
                        for name, value in sorted(vars(callback).items())
                        if not name.startswith("_") and name != "model" and _plain(value)}
        described.append([kind, settings])
    return described


class DataParallel:
    """Data-parallel training of ``plan`` over ``world``'s ranks."""

    def __init__(self, world, plan, backend):
        self.world, self.plan, self.backend = world, plan, backend
        self.global_rows = None
        self.epoch = self.step = 0
        self._reducer = None
        self._dropout = [node for node in plan.nodes if node.layer.draws_per_row]
        for node in plan.nodes:
            if node.layer.batch_statistics:
                node.reduce_statistics = self._global_statistics
                node.reduce_sums = self._global_sums

    def check_alike(self, **facts):
        """Raise the same ValueError on every rank when ranks differ in any of ``facts`` (JSON-ready
        values, compared by digest; the first that differs is reported in detail, per rank)."""
        self.world.where = "before training"
        compare(self.world, facts)

    def fingerprint(self, array):
        """A checksum of a device array's bytes (to compare data or weights across ranks)."""
        return zlib.crc32(self.backend.to_numpy(array).tobytes())

    def install(self):
        """The gradient's sum over the ranks in the plan's step: in buckets during backward where
        ``XPANN_DIST_OVERLAP`` asks for it and the world overlaps, else whole after backward."""
        if overlap_requested() and self.world.overlaps:
            self._reducer = GradientBuckets(self.world, self.plan, self.backend, BUCKET_BYTES)
        else:
            self._reducer = WholeGradient(self.world, self.backend)
        self.plan.gradient_reducers.append(self._reducer)
        self.plan.penalty_in_loss = self.world.rank == 0  # the sum over ranks counts it once

    def remove(self):
        self.plan.gradient_reducers.remove(self._reducer)
        for node in self.plan.nodes:
            node.reduce_statistics = node.reduce_sums = None
            node.batch_rows = None
        self.plan.loss_share = 1.0
        self.plan.penalty_in_loss = True
        self.world.where = ""

    def begin_epoch(self, epoch):
        self.epoch, self.step = epoch, 0
        self.world.where = f"epoch {epoch + 1}, before its first batch"

    def before_step(self, offset, local_rows, global_rows):
        """This rank holds rows ``offset .. offset + local_rows`` of a global batch of ``global_rows``
        (none, in a short last batch of fewer rows than ranks: it still joins every collective)."""
        self.step += 1
        self.world.where = f"epoch {self.epoch + 1}, batch {self.step}"
        self.global_rows = global_rows
        self.plan.loss_share = local_rows / global_rows  # the loss and its gradient, before backward
        for node in self._dropout:
            node.batch_rows = (offset, global_rows)

    def _global_statistics(self, x):
        """(rows, mean, x - mean, biased variance) of the global batch, from every rank's rows."""
        rows = self.global_rows
        total = x.sum(axis=0, dtype="float64")
        self.world.allreduce(total, self.backend, what="the batch statistics' all-reduce")
        mean = (total / rows).astype(x.dtype)
        centered = x - mean
        squares = (centered * centered).sum(axis=0, dtype="float64")
        self.world.allreduce(squares, self.backend, what="the batch statistics' all-reduce")
        return rows, mean, centered, (squares / rows).astype(x.dtype)

    def _global_sums(self, sums):
        xp = self.backend.xp
        both = xp.concatenate([part.astype("float64") for part in sums])
        self.world.allreduce(both, self.backend, what="the batch normalization gradient's all-reduce")
        half = both.shape[0] // 2
        return both[:half].astype(sums[0].dtype), both[half:].astype(sums[1].dtype)

    def reduce_epoch(self, step_losses, metrics):
        """Sum the epoch's per-step losses (already scaled by each rank's share) and the metrics'
        running sums over the ranks: one collective each, once per epoch."""
        self.world.where = f"epoch {self.epoch + 1}, after its last batch"
        self.world.allreduce(step_losses, self.backend, what="the epoch's loss sum")
        for metric in metrics:
            metric.reduce(self.world, self.backend)

    def follow_main(self, stop):
        """Rank 0's decision to stop, on every rank."""
        self.world.where = f"after epoch {self.epoch + 1}"
        return bool(self.world.broadcast(bool(stop), what="the broadcast of rank 0's decision to stop or go on"))


class WholeGradient:
    """The global batch's gradient, after backward: the sum over the ranks of each rank's (whose
    loss was scaled by its rows over the global batch's), one all-reduce of the flat buffer."""

    def __init__(self, world, backend):
        self.world, self.backend = world, backend

    def after_node(self, plan, node):
        """Nothing: the sum waits for the whole gradient."""

    def finish(self, plan):
        self.world.allreduce(plan.parameters.grad, self.backend, what="the gradient all-reduce")


class GradientBuckets:
    """The same sum, overlapped with backward (PyTorch DDP's buckets): the layers lie in order in
    the flat gradient, so the layers backward has finished make one contiguous tail of it. Once the
    finished layers not yet posted hold at least ``bucket_bytes`` (or backward has reached the first
    trainable layer), their slice of the flat gradient (from the start of the layer just finished
    to the start of the last bucket) is posted as one non-blocking all-reduce; each node's end
    lets MPI advance those posted, and ``finish`` waits for all. Each element is the sum of the
    same ranks' values as under ``WholeGradient``: bit for bit the same where MPI adds them in the
    same order (tested at 2 and 3 ranks with MPICH)."""

    def __init__(self, world, plan, backend, bucket_bytes):
        self.world, self.backend = world, backend
        self.buckets = gradient_buckets(plan, bucket_bytes)
        self._posted = []

    def after_node(self, plan, node):
        """Let MPI advance the buckets posted so far; post this node's bucket, if one ends here."""
        if self._posted:
            self._posted = self.world.progress(self._posted)
        bucket = self.buckets.get(node.index)
        if bucket is not None:
            span, what = bucket
            self._posted.append(self.world.start_allreduce(plan.parameters.grad[span], self.backend, what))

    def finish(self, plan):
        """Wait for every bucket posted in this backward pass."""
        self.world.wait(self._posted)
        self._posted = []


def gradient_buckets(plan, bucket_bytes):
    """{node index: (slice of the flat gradient, what to call its all-reduce)}: the buckets posted
    after those nodes' backprops, in backward order; together they cover the flat gradient once."""
    parameters = plan.parameters
    itemsize = parameters.grad.dtype.itemsize
    buckets, end, names = {}, parameters.size, []
    for node in plan.backward_nodes:
        span = parameters.layer_span(node.index)
        if span is None:
            continue
        names.append(node.name)
        if (end - span.start) * itemsize >= bucket_bytes or node.index == plan.first_trainable:
            buckets[node.index] = (slice(span.start, end), f"the gradient all-reduce of {', '.join(names[::-1])}")
            end, names = span.start, []
    return buckets
