"""Data-parallel training under a real MPI launcher (the mpich wheel's mpiexec beside the
interpreter): 2 and 3 ranks (3 oversubscribe this 2-core machine) train as one process on the
global batch, the CLI writes one model, a world of one needs no launcher, and a failing rank ends
the whole job with a message."""

import json
import os
import pathlib
import subprocess
import sys

import numpy
import pytest

import distributed_worker
import xpann

HERE = pathlib.Path(__file__).resolve().parent
MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
TIMEOUT = 120


def mpiexec(ranks, *arguments, timeout=TIMEOUT):
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}: pip install 'xpann[mpi]'")
    pytest.importorskip("mpi4py", reason="pip install 'xpann[mpi]'")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                   "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(MPIEXEC), "-n", str(ranks), *map(str, arguments)], capture_output=True, text=True,
                          timeout=timeout, env=environment, cwd=HERE)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("scenario", sorted(distributed_worker.SCENARIOS))
def test_data_parallel_training_equals_one_process_on_the_global_batch(tmp_path, ranks, scenario):
    out = tmp_path / "weights.npz"
    result = mpiexec(ranks, sys.executable, HERE / "distributed_worker.py", scenario, out)
    assert result.returncode == 0, result.stderr
    reference, history = distributed_worker.train(scenario)
    with numpy.load(out) as stored:
        got = [stored[f"arr_{i}"] for i in range(len(reference.get_weights()))]
        got_history = json.loads(str(stored["history"]))
    for name, value, want in zip(reference.named_weights(), got, reference.get_weights()):
        numpy.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-11, err_msg=name)
    for key, values in history.items():
        numpy.testing.assert_allclose(got_history[key], values, rtol=1e-9, atol=1e-12, err_msg=key)


def test_float32_training_agrees_within_float32_rounding(tmp_path):
    out = tmp_path / "weights.npz"
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "batch_normalization", out, "float32")
    assert result.returncode == 0, result.stderr
    reference, _ = distributed_worker.train("batch_normalization", "float32")
    with numpy.load(out) as stored:
        for i, want in enumerate(reference.get_weights()):
            numpy.testing.assert_allclose(stored[f"arr_{i}"], want, rtol=2e-4, atol=1e-5)


def test_the_cli_under_mpiexec_trains_and_writes_one_model(tmp_path):
    out = tmp_path / "wine.npz"
    xpann_command = pathlib.Path(sys.executable).parent / "xpann"
    command = [str(xpann_command)] if xpann_command.exists() else [sys.executable, "-m", "xpann_cli"]
    result = mpiexec(2, *command, "train", "--dataset", "wine", "--epochs", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.exists() and not list(tmp_path.glob("*.xpann-*.tmp"))
    assert result.stdout.count("Saved the model") == 1  # rank 0 alone speaks
    assert "Data-parallel: 2 ranks over MPI" in result.stdout
    model = xpann.load_model(out)
    assert model.predict(numpy.zeros((1, model.input_dim), dtype="float32")).shape == (1, 3)


def test_a_rank_that_raises_ends_the_job_with_a_message(tmp_path):
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "raise", tmp_path / "unused.npz", timeout=60)
    assert result.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: a deliberate failure" in result.stderr


def test_ranks_that_differ_are_refused_before_training(tmp_path):
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "mismatch", tmp_path / "unused.npz", timeout=60)
    assert result.returncode != 0
    assert "Data-parallel training needs the same seed on every rank, got rank 0: 0, rank 1: 1" in result.stderr


def test_without_a_launcher_the_world_is_this_process():
    assert xpann.distributed.init() == 1
    assert xpann.distributed.world_size() == 1 and xpann.distributed.rank() == 0 and xpann.distributed.is_main()
    with pytest.raises(ValueError, match="valid engines are auto, mpi, nccl"):
        xpann.distributed.init("gloo")


def test_importing_xpann_imports_no_mpi():
    code = "import sys, xpann; xpann.distributed.init(); print('mpi4py' in sys.modules, 'cupy' in sys.modules)"
    environment = {key: value for key, value in os.environ.items() if key not in ("PMI_SIZE", "PMI_RANK")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert output.stdout.split() == ["False", "False"]
