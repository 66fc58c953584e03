"""The NCCL engine without a GPU: a world of one over NCCL with stand-ins for ``cupy`` and
``cupy.cuda.nccl`` sums through the same ``allreduce(array, backend, what)`` as MPI, in NCCL's
call sequence (device, unique id broadcast, communicator, in-place all-reduce on the current
stream); without CuPy, or with CuPy and no GPU, ``init("nccl")`` is one clear RuntimeError."""

import json
import os
import subprocess
import sys

import pytest

import distributed_worker
from test_distributed import HERE

pytest.importorskip("mpi4py", reason="pip install 'xpann[mpi]'")


def run(code, tmp_path):
    """``code`` in a fresh interpreter (init joins a world for the rest of the process)."""
    environment = {**{k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK")},
                   "PYTHONPATH": str(HERE)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=tmp_path,
                          timeout=60)


def test_a_world_of_one_over_nccl_sums_through_the_communicator_in_nccls_call_sequence(tmp_path):
    out = tmp_path / "calls.json"
    result = run(f"import distributed_worker; distributed_worker.main('nccl_fake', {str(out)!r}, 'float64')", tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(out.read_text())
    assert (got["engine"], got["size"], got["rank"]) == ("nccl", 1, 0)
    assert got["calls"] == [
        ["Device.use", 0],  # local rank 0 of 2 GPUs
        ["get_unique_id"],  # on rank 0, broadcast over MPI
        ["NcclCommunicator", 1, "the-unique-id", 0],
        ["allReduce", 1000, 1000, 12, 7, 0, 77],  # in place, float32, sum, on the current stream
        ["allReduce", 2000, 2000, 5, 8, 0, 77],  # float64
    ]


def test_init_nccl_without_cupy_is_a_clear_error(tmp_path):
    code = ("import sys, xpann\nsys.modules['cupy'] = None\n"
            "try:\n    xpann.distributed.init('nccl')\nexcept RuntimeError as error:\n    print(error)\n"
            "print(xpann.distributed.world().engine)")
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    message, engine = result.stdout.strip().splitlines()
    assert message.startswith("Data-parallel training over NCCL needs CuPy with NCCL: pip install")
    assert engine == "single"  # nothing joined


def test_init_nccl_with_cupy_but_no_gpu_is_a_clear_error(tmp_path):
    code = ("import distributed_worker, xpann\ndistributed_worker.install_fake_cupy()\n"
            "import cupy\n"
            "class CUDARuntimeError(RuntimeError):\n    pass\n"
            "def no_device():\n    raise CUDARuntimeError('cudaErrorNoDevice: no CUDA-capable device is detected')\n"
            "cupy.cuda.runtime.getDeviceCount = no_device\n"
            "try:\n    xpann.distributed.init('nccl')\nexcept RuntimeError as error:\n    print(error)\n")
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("Data-parallel training over NCCL needs a CUDA GPU for every rank, and rank 0 "
                                     "has none (CUDARuntimeError: cudaErrorNoDevice: no CUDA-capable device is "
                                     "detected).")


def test_the_fake_array_is_what_the_communicator_reads():
    array = distributed_worker.FakeDeviceArray(3, "float32", 5)
    assert (array.size, str(array.dtype), array.data.ptr) == (3, "float32", 5)
