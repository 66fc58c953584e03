"""The worlds a model trains in: one process, ranks of an MPI job (mpi4py), or GPUs joined by NCCL
(CuPy). A world sums arrays over its ranks in place, broadcasts small objects from rank 0, and
ends the whole job when one rank fails. Over MPI every collective has a deadline
(``XPANN_DIST_TIMEOUT`` seconds): a rank still waiting then asks the others where they are and
ends the job naming the ranks that did not arrive."""

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
    grace = 2.0
    """Seconds a timed-out rank waits for the others' answers before it names the silent ones."""

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
        what = what or "an all-reduce"
        try:
            memoryview(array)
        except TypeError:
            host = backend.to_numpy(array).copy()
            self._collective(what, lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM))
            array[...] = backend.asarray(host)
            return array
        self._collective(what, lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM))
        return array

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
        """Post a non-blocking collective and poll it: a few quick tests, then sleeps growing to
        5 ms, answering the other ranks' questions meanwhile, until it completes or the deadline."""
        self._sequence += 1
        self._doing = self._label(what)
        request = post()
        if self.size > 1 and not request.Test():
            deadline = time.monotonic() + self.timeout if self.timeout else None
            tries, pause = 0, 2e-5
            while not request.Test():
                self._answer()
                if deadline is not None and time.monotonic() > deadline:
                    self._time_out()
                tries += 1
                if tries > 50:
                    time.sleep(pause)
                    pause = min(pause * 1.5, 0.005)
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


class NCCLWorld(MPIWorld):
    """One GPU per rank of an MPI job: device arrays are summed by NCCL (CuPy's communicator);
    the MPI job carries the rendezvous (NCCL's unique id, broadcast from rank 0), small objects and
    the abort."""

    engine = "nccl"

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
