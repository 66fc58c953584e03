"""The worlds a model trains in: one process, ranks of an MPI job (mpi4py), or GPUs joined by NCCL
(CuPy). A world sums arrays over its ranks in place, broadcasts small objects from rank 0, and
ends the whole job when one rank fails."""

import os
import sys

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
"""Set by MPI launchers (MPICH's Hydra, Open MPI, PMIx) in every process they start."""


def launched_by_mpi():
    """True in a process started by an MPI launcher (mpiexec, mpirun, srun with PMI)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


class SingleWorld:
    """One process: every collective is the identity."""

    engine = "single"
    size = 1
    rank = 0

    def allreduce(self, array, backend=None):
        return array

    def broadcast(self, value):
        return value

    def allgather(self, value):
        return [value]

    def abort(self, message):
        raise SystemExit(message)


class MPIWorld:
    """The ranks of an MPI job. Arrays are summed with ``Allreduce(IN_PLACE)``; device arrays of a
    GPU backend pass through the host (use NCCL on GPUs). An uncaught exception on any rank prints
    which rank failed and why, then aborts the whole job, so no rank waits forever in a collective."""

    engine = "mpi"

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise RuntimeError("Data-parallel training over MPI needs mpi4py and an MPI library: "
                               f"pip install 'xpann[mpi]' ({error}).") from None
        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()
        previous = sys.excepthook

        def abort_on_error(kind, error, trace):
            self._say(f"{kind.__name__}: {error}")
            previous(kind, error, trace)
            self.comm.Abort(1)

        sys.excepthook = abort_on_error

    def allreduce(self, array, backend=None):
        """Sum ``array`` over the ranks, in place. An array without the buffer protocol (a GPU
        backend's) passes through the host by ``backend``."""
        try:
            memoryview(array)
        except TypeError:
            host = backend.to_numpy(array).copy()
            self.comm.Allreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM)
            array[...] = backend.asarray(host)
            return array
        self.comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        return array

    def broadcast(self, value):
        return self.comm.bcast(value, root=0)

    def allgather(self, value):
        return self.comm.allgather(value)

    def abort(self, message):
        self._say(message)
        self.comm.Abort(1)

    def _say(self, message):
        sys.stderr.write(f"xpann: rank {self.rank} of {self.size} failed: {message.rstrip('.')}; stopping every rank.\n")
        sys.stderr.flush()


class NCCLWorld(MPIWorld):
    """One GPU per rank of an MPI job: device arrays are summed by NCCL (CuPy's communicator);
    the MPI job carries the rendezvous (NCCL's unique id, broadcast from rank 0), small objects and
    the abort."""

    engine = "nccl"

    def __init__(self):
        super().__init__()
        from ..backend._nccl import NcclCommunicator

        local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", self.rank)))
        self.communicator = NcclCommunicator(self.size, self.rank, local, self.broadcast)

    def allreduce(self, array, backend=None):
        return self.communicator.allreduce(array)
