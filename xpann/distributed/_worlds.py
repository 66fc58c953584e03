"""The worlds a model trains in: one process, ranks of an MPI job (mpi4py), or GPUs joined by NCCL
(CuPy). A world sums arrays over its ranks in place, broadcasts small objects from rank 0, and
ends the whole job when one rank fails. Over MPI every collective has a deadline
(``XPANN_DIST_TIMEOUT`` seconds): a rank still waiting then asks the others where they are and
ends the job naming the ranks that did not arrive. A world with ``overlaps`` also lets a sum run
while the caller computes: ``start_allreduce`` posts it, ``progress`` lets it advance, ``wait``
waits for it under the same deadline."""

import math
import os
import sys
import time

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
"""Set by MPI launchers (MPICH's Hydra, Open MPI, PMIx) in every process they start."""
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
TIMEOUT_VARIABLE = "XPANN_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
"""Seconds a rank waits in one collective for the others before the job is ended (0: forever)."""
_QUERY, _REPLY = 71, 72  # tags of "where are you?" and its answer, on the world's control communicator


def collective_timeout():
    """``XPANN_DIST_TIMEOUT`` in seconds (default 600; 0 waits forever)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a number of seconds >= 0 (0 waits forever), got {text!r}.")
    return value


def launcher_rank():
    """This process's rank as its MPI launcher numbered it (None when no launcher says)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def launched_by_mpi():
    """True in a process started by an MPI launcher (mpiexec, mpirun, srun with PMI)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


class SingleWorld:
    """One process: every collective is the identity."""

    engine = "single"
    size = 1
    rank = 0
    where = ""
    overlaps = False

    def allreduce(self, array, backend=None, what=None):
        return array

    def broadcast(self, value, what=None):
        return value

    def allgather(self, value, what=None):
        return [value]

    def abort(self, message):
        raise SystemExit(message)


SAY_SECONDS = 0.5  # the pause after a failing rank's message, before the job is aborted


class MPIWorld:
    """The ranks of an MPI job. Arrays are summed with ``Iallreduce(IN_PLACE)``; device arrays of a
    GPU backend pass through the host (use NCCL on GPUs). An uncaught exception on any rank prints
    which rank failed and why, then aborts the whole job, so no rank waits forever in a collective.

    Every collective is non-blocking, polled until ``timeout`` seconds (``XPANN_DIST_TIMEOUT``)
    have passed; then the waiting rank asks the others (on a duplicate communicator that every
    waiting rank answers) which collective they are in, and aborts the job naming the ranks that
    did not arrive and the step (``what`` the collective is, at ``where``: set by the trainer)."""

    engine = "mpi"
    overlaps = True
    grace = 2.0
    """Seconds a timed-out rank waits for the others' answers before it names the silent ones."""
    spin = 0.05
    """Seconds a waiting rank tests without sleeping (measured: sleeps of up to 5 ms from the
    51st test on halved mnist-like's samples/s at 2 ranks, compare_distributed_2026-12-07_*)."""
    longest_pause = 0.001

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise RuntimeError("Data-parallel training over MPI needs mpi4py and an MPI library: "
                               f"pip install 'xpann[mpi]' ({error}).") from None
        self._mpi = MPI
        self.timeout = collective_timeout()
        self.comm = MPI.COMM_WORLD
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()
        self._stderr = sys.stderr  # the one the launcher collects, even where a command silences a rank later
        self._control = self.comm.Dup() if self.size > 1 else None
        self._sequence = 0  # the collectives this rank has entered
        self._doing = None  # the one it waits in
        self.where = ""
        previous = sys.excepthook

        def abort_on_error(kind, error, trace):
            self._say(f"{kind.__name__}: {error}")
            previous(kind, error, trace)
            self.comm.Abort(1)

        sys.excepthook = abort_on_error

    def allreduce(self, array, backend=None, what=None):
        """Sum ``array`` over the ranks, in place. An array without the buffer protocol (a GPU
        backend's) passes through the host by ``backend``."""
        self.wait([self.start_allreduce(array, backend, what)])
        return array

    def start_allreduce(self, array, backend=None, what=None):
        """Post the in-place sum of ``array`` over the ranks and return it as a posted collective,
        for ``progress`` and ``wait``: until ``wait`` has returned it, ``array`` must be neither
        read nor written. Every rank posts the same collectives in the same order."""
        try:
            memoryview(array)
        except TypeError:  # a GPU backend's array: summed on the host, copied back on completion
            host = backend.to_numpy(array).copy()

            def copy_back():
                array[...] = backend.asarray(host)
        else:
            host, copy_back = array, None
        return self._post(what or "an all-reduce",
                          lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM), copy_back)

    def broadcast(self, value, what=None):
        """Rank 0's ``value`` on every rank (a small object: pickled, after a barrier with the deadline)."""
        self._collective(what or "a broadcast", self.comm.Ibarrier)
        return self.comm.bcast(value, root=0)

    def allgather(self, value, what=None):
        """Every rank's ``value``, in rank order (a small object, after a barrier with the deadline)."""
        self._collective(what or "an all-gather", self.comm.Ibarrier)
        return self.comm.allgather(value)

    def abort(self, message):
        self._say(message)
        self.comm.Abort(1)

    def _say(self, message):
        """The failing rank's one line, given ``SAY_SECONDS`` to reach mpiexec before an abort
        kills the job (a busy machine's launcher forwards output late, and an abort drops it)."""
        self._stderr.write(f"xpann: rank {self.rank} of {self.size} failed: {message.rstrip('.')}; stopping every rank.\n")
        self._stderr.flush()
        time.sleep(SAY_SECONDS)

    # ----- collectives with a deadline ---------------------------------------------------------

    def _label(self, what):
        return f"{what} ({self.where})" if self.where else what

    def _collective(self, what, post):
        """Post a non-blocking collective and wait for it (``wait``)."""
        self.wait([self._post(what, post)])

    def _post(self, what, post, on_completion=None):
        """The collective ``post()`` starts, counted in the collectives this rank has entered."""
        self._sequence += 1
        return Posted(post(), self._label(what), on_completion)

    def progress(self, posted):
        """Let MPI advance the posted collectives (one test each, completing those done); returns
        those still under way, in the order they were posted."""
        return [item for item in posted if not item.test()]

    def wait(self, posted):
        """Until every posted collective completes: tests without pause for ``spin`` seconds
        (yielding the core to any other process between tests), then sleeps growing to
        ``longest_pause``, answering the other ranks' questions meanwhile (naming the oldest
        collective still under way as the one this rank waits in), until all complete or the
        deadline passes. MPI moves a non-blocking sum forward only while a rank tests it, so a
        sleeping rank stalls the others: the spin covers a training step's sums."""
        pending = self.progress(posted)
        if not pending:
            return
        if self.size == 1:
            for item in pending:
                item.request.Wait()
                item.test()
            return
        now = time.monotonic()
        deadline = now + self.timeout if self.timeout else None
        spin_until, pause = now + self.spin, 2e-5
        while pending:
            self._doing = pending[0].label
            self._answer()
            now = time.monotonic()
            if deadline is not None and now > deadline:
                self._time_out()
            if now < spin_until:
                os.sched_yield()
            else:
                time.sleep(pause)
                pause = min(pause * 1.5, self.longest_pause)
            pending = self.progress(pending)
        self._doing = None

    def _answer(self):
        """Tell each rank that asked which collective this one waits in."""
        status = self._mpi.Status()
        while self._control.Iprobe(source=self._mpi.ANY_SOURCE, tag=_QUERY, status=status):
            source = status.Get_source()
            self._control.recv(source=source, tag=_QUERY)
            self._control.send((self._sequence, self._doing), dest=source, tag=_REPLY)

    def _time_out(self):
        """Ask every other rank where it is, wait ``grace`` seconds for the answers, and end the job
        naming the ranks that did not arrive (silent: busy elsewhere) or wait in another collective."""
        others = [r for r in range(self.size) if r != self.rank]
        for other in others:
            self._control.send(None, dest=other, tag=_QUERY)
        replies, status = {}, self._mpi.Status()
        end = time.monotonic() + self.grace
        while len(replies) < len(others) and time.monotonic() < end:
            self._answer()
            while self._control.Iprobe(source=self._mpi.ANY_SOURCE, tag=_REPLY, status=status):
                source = status.Get_source()
                replies[source] = self._control.recv(source=source, tag=_REPLY)
            time.sleep(0.005)
        missing = [r for r in others if r not in replies]
        elsewhere = [f"rank {r} waits in {doing or 'no collective'}" for r, (sequence, doing) in sorted(replies.items())
                     if sequence != self._sequence]
        parts = ([f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} did not arrive"] if missing else [])
        parts += elsewhere
        self.abort(f"waited {self.timeout:g} s ({TIMEOUT_VARIABLE}) in {self._doing}: "
                   + ("; ".join(parts) or "every rank arrived, yet the collective did not complete"))


class Posted:
    """A posted non-blocking collective: its MPI ``request``, its ``label`` (what it is, where) and
    what to do once it has completed (``on_completion``: copy a host buffer back to the device)."""

    __slots__ = ("request", "label", "on_completion")

    def __init__(self, request, label, on_completion=None):
        self.request, self.label, self.on_completion = request, label, on_completion

    def test(self):
        """True once the collective has completed (``on_completion`` then runs, once)."""
        if not self.request.Test():
            return False
        if self.on_completion is not None:
            self.on_completion()
            self.on_completion = None
        return True


class NCCLWorld(MPIWorld):
    """One GPU per rank of an MPI job: device arrays are summed by NCCL (CuPy's communicator);
    the MPI job carries the rendezvous (NCCL's unique id, broadcast from rank 0), small objects and
    the abort. The gradient is summed whole after backward (``overlaps`` is False): NCCL's sum
    already runs on the GPU while the host goes on."""

    engine = "nccl"
    overlaps = False

    def __init__(self):
        super().__init__()
        from ..backend._nccl import NcclCommunicator

        local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", self.rank)))
        try:
            self.communicator = NcclCommunicator(self.size, self.rank, local, self.broadcast)
        except RuntimeError as error:
            if type(error) is RuntimeError:  # ours: no CuPy, or no NCCL in it
                raise
            raise RuntimeError(f"Data-parallel training over NCCL needs a CUDA GPU for every rank, and rank "
                               f"{self.rank} has none ({type(error).__name__}: {error}).") from None
        except Exception as error:
            raise RuntimeError(f"Data-parallel training over NCCL needs a CUDA GPU for every rank, and rank "
                               f"{self.rank} has none ({type(error).__name__}: {error}).") from None

    def allreduce(self, array, backend=None, what=None):
        """Sum a device array over the ranks by NCCL (no deadline: NCCL's own; the MPI side's
        broadcasts and gathers keep theirs)."""
        return self.communicator.allreduce(array)
