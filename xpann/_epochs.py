"""The data side of training, kept apart from the trainer: an epoch's batches of (x, y, weights)."""

import math


class EpochIterator:
    """Batches of ``batch_size`` rows of device arrays, in a fresh seeded order each epoch when
    ``shuffle``. Each shuffled batch is gathered into the same buffers: no copy of the data set
    per epoch, and the batch is still in cache when the first product reads it."""

    def __init__(self, backend, x, y, weights, batch_size, shuffle, rng):
        self.backend = backend
        self.x, self.y, self.weights = x, y, weights
        self.rows = x.shape[0]
        self.batch_size = batch_size
        self.steps = math.ceil(self.rows / batch_size)
        self.shuffle = bool(shuffle)
        self.rng = rng
        if self.shuffle:
            xp = backend.xp
            self._x = xp.empty((batch_size,) + x.shape[1:], dtype=x.dtype)
            self._y = xp.empty((batch_size,) + y.shape[1:], dtype=y.dtype)
            self._w = None if weights is None else xp.empty(batch_size, dtype=weights.dtype)

    def epoch(self):
        """Yield (x, y, weights or None) for each step of one epoch."""
        x, y, w, n, size = self.x, self.y, self.weights, self.rows, self.batch_size
        if not self.shuffle:
            for start in range(0, n, size):
                yield x[start:start + size], y[start:start + size], None if w is None else w[start:start + size]
            return
        take = self.backend.take_rows
        order = self.backend.asarray(self.rng.permutation(n))
        for start in range(0, n, size):
            stop = min(start + size, n)
            rows = order[start:stop]
            count = stop - start
            yield (take(x, rows, out=self._x[:count]), take(y, rows, out=self._y[:count]),
                   None if w is None else take(w, rows, out=self._w[:count]))
