"""The data side of training, kept apart from the trainer: an epoch's batches of (x, y, weights)."""

import math


class EpochIterator:
    """Batches of ``batch_size`` rows of device arrays, in a fresh seeded order each epoch when
    ``shuffle``. Each shuffled batch is gathered into the same buffers: no copy of the data set
    per epoch, and the batch is still in cache when the first product reads it.

    With ``shard=(rank, ranks)`` (data-parallel training) every rank draws the same order and gets
    its contiguous share of each global batch; ``current`` tells which (first row, rows, global
    rows). Every batch is split, however short: in one of fewer rows than ranks the last ranks get
    no rows (and still join the step's collectives).
    """

    def __init__(self, backend, x, y, weights, batch_size, shuffle, rng, shard=None):
        self.backend = backend
        self.x, self.y, self.weights = x, y, weights
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.rng = rng
        self.rank, self.ranks = shard or (0, 1)
        self.rows = x.shape[0]
        self.steps = math.ceil(self.rows / batch_size)
        self.current = None
        if self.shuffle:
            xp = backend.xp
            size = math.ceil(batch_size / self.ranks)
            self._x = xp.empty((size,) + x.shape[1:], dtype=x.dtype)
            self._y = xp.empty((size,) + y.shape[1:], dtype=y.dtype)
            self._w = None if weights is None else xp.empty(size, dtype=weights.dtype)

    def share(self, rows):
        """(first row, rows) of this rank's part of a global batch of ``rows``."""
        base, extra = divmod(rows, self.ranks)
        first = self.rank * base + min(self.rank, extra)
        return first, base + (self.rank < extra)

    def epoch(self):
        """Yield (x, y, weights or None) for each step of one epoch (this rank's share of it)."""
        x, y, w, size = self.x, self.y, self.weights, self.batch_size
        order = self.backend.asarray(self.rng.permutation(x.shape[0])) if self.shuffle else None
        take = self.backend.take_rows
        for start in range(0, self.rows, size):
            stop = min(start + size, self.rows)
            first, count = self.share(stop - start)
            self.current = (first, count, stop - start)
            lo, hi = start + first, start + first + count
            if order is None:
                yield x[lo:hi], y[lo:hi], None if w is None else w[lo:hi]
                continue
            rows = order[lo:hi]
            yield (take(x, rows, out=self._x[:count]), take(y, rows, out=self._y[:count]),
                   None if w is None else take(w, rows, out=self._w[:count]))
