"""Data-parallel training on the engines clusters run: MPI (mpi4py) on CPUs, NCCL (CuPy) on GPUs.

    xpann.distributed.init(engine="auto")   # "mpi" | "nccl" | "auto"
    model.fit(x, y, batch_size=256)         # 256 is the global batch

Launched by the engine's own launcher (``mpiexec -n 4 python train.py``), every rank holds the
whole data set and the same model (same seed), draws the same shuffled order, and computes its
contiguous share of each global batch (every batch is split, however short: a rank may get no
rows of the last one); one all-reduce of the flat gradient buffer per step sums the shares (each
scaled by its rows over the global batch's), so the weights equal one process's training on the
global batch within float32 rounding. Before training, ``fit`` checks that every rank trains alike
(the model's configuration, loss, metrics, optimizer, callbacks' settings, epochs, initial_epoch,
batch size, the data, validation data and initial weights, by digest) and raises the same
ValueError on every rank, naming what differs on which rank; ``check_same(name, value)`` does the
same for anything else (the CLI's preprocessing). Dropout masks are drawn for the global batch
on every rank, BatchNormalization uses the global batch's statistics, losses and metrics are summed
over the ranks once per epoch (the regularizers' penalty counted once), and callbacks see the same
logs everywhere (rank 0's stop decision is broadcast). Only rank 0 prints and writes files.

``XPANN_DIST_OVERLAP=1`` sums the gradient over MPI while backward runs instead, in buckets as
PyTorch DDP does: the layers lie in order in the flat buffer, so once the layers backward has
finished hold 256 KiB of gradient (``BUCKET_BYTES``; and at the first trainable layer) their
contiguous slice is posted as a non-blocking all-reduce, MPI advances it as each further layer
ends, and the step waits for every bucket before the update. The weights are bit for bit those of
the whole sum (each element is the same ranks' values added alike; tested at 2 and 3 ranks). The
default is 0: with MPICH on a 2-core machine it hid no communication (MPICH advances a posted
sum only inside MPI calls, and the big layer's backprop is one BLAS call: 0.89-0.99x the whole
sum's samples/s on mnist-like at 2 ranks, benchmarks/results/compare_distributed_2026-12-07_overlap_spin.md).
It may pay with an MPI that progresses sums on its own (a progress thread with spare cores,
offload to the network). Under NCCL the gradient is summed whole either way.

No rank waits forever: over MPI every collective is non-blocking and polled against a deadline of
``XPANN_DIST_TIMEOUT`` seconds (default 600; 0 waits forever). A rank still waiting then asks the
others where they are and ends the job (MPI_Abort) with a message naming the collective, the epoch
and batch, and the ranks that did not arrive (or wait in another collective). Under NCCL the
gradient all-reduce runs on the GPU without a deadline; the MPI side's gathers keep theirs. Without a launcher the world is this one
process and nothing changes. mpi4py and CuPy are imported only by ``init``.
"""

from ._training import OVERLAP_VARIABLE
from ._training import compare as _compare
from ._worlds import DEFAULT_TIMEOUT, TIMEOUT_VARIABLE, MPIWorld, NCCLWorld, SingleWorld, launched_by_mpi, launcher_rank

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


def check_same(name, value):
    """Raise the same ValueError on every rank when ranks hold different ``value`` (JSON-ready;
    compared by a digest of its JSON), naming ``name``, the rank and where it differs from rank
    0's. Nothing to do in a world of one. Every rank must call it at the same point."""
    _compare(_WORLD, {name: value}, what=f"the check of the {name} on every rank")


__all__ = ["DEFAULT_TIMEOUT", "ENGINES", "OVERLAP_VARIABLE", "TIMEOUT_VARIABLE", "check_same", "init", "is_main",
           "launched_by_mpi", "launcher_rank", "rank", "world", "world_size"]
