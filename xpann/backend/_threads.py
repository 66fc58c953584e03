"""How many BLAS threads the CPU backend's matrix products run on.

One thread wins on the small matrix products of a tabular network: a second thread must be woken
for every product and waits on the element-wise work between them. Large products (a few hundred
rows times a few hundred columns and up) gain up to twice from two threads on two cores, but only
while the cores are free: OpenBLAS splits a product evenly over its threads, so when another
process holds a core the whole product waits for the thread that cannot run, and a step takes 4
to 40 times longer. So a training loop runs on one thread below ``PARALLEL_MIN_WORK``, and above
it on the threads the process allows (``OPENBLAS_NUM_THREADS``, ``threadpoolctl.threadpool_limits``
and the like win) but never on every core: one core is left to the rest of the machine, so that a
second process cannot stall every product (on 2 cores: one thread, always; measured, two threads
collapsed to 6-26k samples/s beside a busy process where one thread ran 188k).

``XPANN_BLAS_THREADS`` sets the policy: "auto" (the default: by product size and core count alone,
so a seed gives the same weights run after run), "adaptive" (above ``PARALLEL_MIN_WORK``, only as many threads as
there are cores other processes left free over the last ``CHECK_INTERVAL`` seconds, from
/proc/stat on Linux: faster on a busy machine, but OpenBLAS rounds differently on 1 and 2 threads,
so results then depend on the load), or a whole number of threads.
"""

import os
import threading
import time

ENVIRONMENT_VARIABLE = "XPANN_BLAS_THREADS"

PARALLEL_MIN_WORK = 2**21
"""Smallest m*n*k of the largest product in a step from which more than one thread is used.

Measured over whole training steps (fit of a two-hidden-layer ReLU MLP, widths 64 to 512, batch
sizes 32 to 1024) on a 2-core AMD EPYC (Zen 5) with OpenBLAS 0.3.31, idle otherwise: two threads
gave 0.97-1.10x at m*n*k up to 1M (batch 64 x 128 x 128), 1.14-1.36x at 2M, 1.2-1.5x at 4M-16M
and 1.5-1.7x from 32M. Below 2M the gain is small and not worth the risk of a stall."""

CHECK_INTERVAL = 0.1
"""Seconds between two samples of how many cores other processes keep busy (the kernel counts CPU
time in 10 ms ticks, so shorter windows would be too coarse)."""


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
        """The thread count now in force (the smallest over the BLAS libraries), or None if unknown."""
        counts = [lib.num_threads for lib in self.libraries()]
        return min(counts) if counts else None

    def plan(self, products):
        """A ThreadPlan (a context manager) for a loop of matrix products of the (m, n, k) sizes
        ``products``."""
        return ThreadPlan(self, products)


class ThreadPlan:
    """The BLAS thread count for one training loop; ``with plan:`` sets it and restores the
    previous counts on exit. ``threads`` is the count in force (None when the BLAS cannot be
    controlled). Call ``refresh()`` between steps: for large products it follows how many cores
    other processes left free (re-sampled at most every ``CHECK_INTERVAL`` seconds); ``steps``
    counts the steps run at each thread count."""

    def __init__(self, controller, products):
        self._libraries = controller.libraries()
        self._previous = [lib.num_threads for lib in self._libraries]
        # The smallest count: a library loaded after a threadpool_limits() block began keeps its
        # default, and the limit the user set on the others must still hold.
        allowed = min(self._previous) if self._previous else None
        policy, forced = _policy()
        largest = max((m * n * k for m, n, k in products), default=0)
        self.allowed = allowed
        self._adaptive = (policy == "adaptive" and allowed is not None and allowed > 1
                          and largest >= PARALLEL_MIN_WORK)
        if allowed is None:
            self.threads = None
        elif forced is not None:
            self.threads = min(forced, allowed)  # the process's own limit wins, as for auto
        else:
            self.threads = min(allowed, _spare_cores()) if largest >= PARALLEL_MIN_WORK else 1
        self._next_check = 0.0
        self.steps = {}

    def __enter__(self):
        if self._adaptive:
            self.refresh()
        self._apply(self.threads)
        return self

    def __exit__(self, *exc_info):
        for lib, count in zip(self._libraries, self._previous):
            if lib.num_threads != count:
                lib.set_num_threads(count)
        return False

    def refresh(self):
        """Count a step; re-sample the cores other processes keep busy (if the interval has
        passed) and follow."""
        self.steps[self.threads] = self.steps.get(self.threads, 0) + 1
        if not self._adaptive:
            return
        now = time.perf_counter()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL
        free = CPU_LOAD.free_cores()
        threads = self.allowed if free is None else max(1, min(self.allowed, free))
        if threads != self.threads:
            self._apply(threads)

    def _apply(self, threads):
        self.threads = threads
        if threads is None:
            return
        for lib in self._libraries:
            if lib.num_threads != threads:
                lib.set_num_threads(threads)


class CpuLoad:
    """How many cores other processes kept busy lately: the machine's busy CPU time (``/proc/stat``,
    steal time included) less this process's own, over the time since the previous sample.
    Linux only; elsewhere ``others()`` is None."""

    def __init__(self):
        self._last = None
        self._estimate = None
        try:
            self._tick = 1.0 / os.sysconf("SC_CLK_TCK")
            self._usable = len(os.sched_getaffinity(0))
        except (AttributeError, OSError, ValueError):
            self._tick = None

    def _sample(self):
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
        # cpu  user nice system idle iowait irq softirq steal ...
        ticks = [int(value) for value in fields[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) * self._tick
        return time.perf_counter(), busy, time.process_time()

    def others(self, window=CHECK_INTERVAL):
        """Cores' worth of CPU time other processes used since the previous sample, once at least
        ``window`` seconds have passed (the previous estimate until then; None at first)."""
        if self._tick is None:
            return None
        try:
            now = self._sample()
        except (OSError, ValueError, IndexError):
            self._tick = None
            return None
        last = self._last
        if last is None or now[0] - last[0] > 10 * window:
            self._last, self._estimate = now, None
        elif now[0] - last[0] >= window:
            elapsed = now[0] - last[0]
            self._estimate = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / elapsed
            self._last = now
        return self._estimate

    def free_cores(self):
        """Cores this process may use that other processes left free lately, or None if unknown."""
        others = self.others()
        if others is None:
            return None
        # A third of a core counts as busy: while this process runs two threads on two cores, a
        # process that wants a whole core gets only about two thirds of one.
        return self._usable - int(others + 0.7)


CPU_LOAD = CpuLoad()


def _spare_cores():
    """The cores this process may use less one, left to the rest of the machine (at least 1)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, usable - 1)


def _policy():
    """("auto" | "adaptive" | "fixed", the fixed thread count or None) from XPANN_BLAS_THREADS."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower()
    if value in ("", "auto", "adaptive"):
        return value or "auto", None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={value!r} must be 'auto', 'adaptive' or a whole number of threads >= 1.")
    return "fixed", threads


BLAS_THREADS = BlasThreads()
