"""How many BLAS threads the CPU backend's matrix products run on.

One thread wins on the small matrix products of a tabular network: a second thread must be woken
for every product and waits on the element-wise work between them, and when the other core is
busy a two-thread product stalls until it gets the core back. Large products (a few hundred rows
times a few hundred columns and up) gain close to twice from two threads. So a training loop asks
for a thread count chosen from the sizes of the products it runs, never more than the process
already allows (``OPENBLAS_NUM_THREADS``, ``threadpoolctl.threadpool_limits`` and the like win).

``XPANN_BLAS_THREADS`` overrides the choice: "auto" (the default), or a whole number of threads.
"""

import contextlib
import os
import threading

ENVIRONMENT_VARIABLE = "XPANN_BLAS_THREADS"

PARALLEL_MIN_WORK = 2**22
"""Smallest m*n*k of the largest product in a step from which more than one thread is used.

Measured on a 2-core AMD EPYC (Zen 5) with OpenBLAS 0.3.31 over whole training steps (see
benchmarks/README.md): a 64x128x128 step runs faster on one thread, a 256x784x512 step about
1.7 times faster on two; the crossover sits near 256 rows x 128 x 128 (m*n*k = 4M)."""


class BlasThreads:
    """The thread count of the BLAS libraries loaded in this process, through threadpoolctl."""

    def __init__(self):
        self._libraries = None
        self._lock = threading.Lock()

    def libraries(self):
        """threadpoolctl's controllers of the loaded BLAS libraries (empty without threadpoolctl)."""
        if self._libraries is None:
            with self._lock:
                if self._libraries is None:
                    try:
                        from threadpoolctl import ThreadpoolController

                        controllers = ThreadpoolController().lib_controllers
                    except Exception:  # threadpoolctl missing or unable to inspect this process
                        controllers = []
                    self._libraries = [lib for lib in controllers if lib.user_api == "blas"]
        return self._libraries

    def current(self):
        """The thread count now in force (the largest over the BLAS libraries), or None if unknown."""
        counts = [lib.num_threads for lib in self.libraries()]
        return max(counts) if counts else None

    def choose(self, products):
        """The thread count for a loop whose matrix products have the (m, n, k) sizes ``products``:
        one below ``PARALLEL_MIN_WORK``, else what the process allows; an integer
        ``XPANN_BLAS_THREADS`` forces its value. None when the BLAS cannot be controlled."""
        current = self.current()
        if current is None:
            return None
        forced = _forced_threads()
        if forced is not None:
            return forced
        largest = max((m * n * k for m, n, k in products), default=0)
        return current if largest >= PARALLEL_MIN_WORK else 1

    @contextlib.contextmanager
    def limit(self, threads):
        """Run the block with ``threads`` BLAS threads, then restore the previous counts."""
        libraries = self.libraries() if threads else []
        previous = [lib.num_threads for lib in libraries]
        try:
            for lib, count in zip(libraries, previous):
                if count != threads:
                    lib.set_num_threads(threads)
            yield threads
        finally:
            for lib, count in zip(libraries, previous):
                if count != threads:
                    lib.set_num_threads(count)


def _forced_threads():
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower()
    if value in ("", "auto"):
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={value!r} must be 'auto' or a whole number of threads >= 1.")
    return threads


BLAS_THREADS = BlasThreads()
