"""NCCL through CuPy: one GPU per rank, summing device arrays in place (data-parallel training)."""


class NcclCommunicator:
    """A communicator over ``size`` ranks. ``broadcast(value)`` sends rank 0's value to every rank
    (the MPI job's), which carries NCCL's unique id; rank r takes GPU ``local_rank mod GPUs``."""

    def __init__(self, size, rank, local_rank, broadcast):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as error:
            raise RuntimeError("Data-parallel training over NCCL needs CuPy with NCCL: pip install "
                               f"'xpann[cuda12,nccl]' or 'xpann[cuda13,nccl]' ({error}).") from None
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        self._cupy, self._nccl = cupy, nccl
        unique_id = broadcast(nccl.get_unique_id() if rank == 0 else None)
        self._communicator = nccl.NcclCommunicator(size, unique_id, rank)
        self._kinds = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64, "int64": nccl.NCCL_INT64}

    def allreduce(self, array):
        """Sum ``array`` (a C-contiguous CuPy array) over the ranks, in place, on the current stream."""
        stream = self._cupy.cuda.get_current_stream().ptr
        self._communicator.allReduce(array.data.ptr, array.data.ptr, array.size, self._kinds[str(array.dtype)],
                                     self._nccl.NCCL_SUM, stream)
        return array
