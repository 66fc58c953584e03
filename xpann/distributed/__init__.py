"""Data-parallel training on the engines clusters run: MPI (mpi4py) on CPUs, NCCL (CuPy) on GPUs.

    xpann.distributed.init(engine="auto")   # "mpi" | "nccl" | "auto"
    model.fit(x, y, batch_size=256)         # 256 is the global batch

Launched by the engine's own launcher (``mpiexec -n 4 python train.py``), every rank holds the
whole data set and the same model (same seed), draws the same shuffled order, and computes its
contiguous share of each global batch; one all-reduce of the flat gradient buffer per step sums
the shares (each scaled by its rows over the global batch's), so the weights equal one process's
training on the global batch within float32 rounding. Dropout masks are drawn for the global batch
on every rank, BatchNormalization uses the global batch's statistics, losses and metrics are summed
over the ranks once per epoch, and callbacks see the same logs everywhere (rank 0's stop decision
is broadcast). Only rank 0 prints and writes files. Without a launcher the world is this one
process and nothing changes. mpi4py and CuPy are imported only by ``init``.
"""

from ._worlds import MPIWorld, NCCLWorld, SingleWorld, launched_by_mpi

ENGINES = ("auto", "mpi", "nccl")
_WORLD = SingleWorld()


def init(engine="auto"):
    """Join the job's world: "mpi", "nccl" (one GPU per rank), or "auto" (MPI when an MPI launcher
    started this process, NCCL on top when the cupy backend is in force, else a world of one).
    Returns the world size. Calling it again keeps the world already joined."""
    global _WORLD
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}; valid engines are {', '.join(ENGINES)}.")
    if _WORLD.size > 1 or _WORLD.engine != "single":
        return _WORLD.size
    if engine == "auto":
        if not launched_by_mpi():
            return 1
        from ..backend import get_backend

        engine = "nccl" if get_backend().name == "cupy" else "mpi"
    _WORLD = NCCLWorld() if engine == "nccl" else MPIWorld()
    return _WORLD.size


def world():
    """The world joined by ``init`` (a world of one before)."""
    return _WORLD


def world_size():
    return _WORLD.size


def rank():
    return _WORLD.rank


def is_main():
    """True on rank 0, the one that prints and writes files."""
    return _WORLD.rank == 0


__all__ = ["ENGINES", "init", "is_main", "launched_by_mpi", "rank", "world", "world_size"]
