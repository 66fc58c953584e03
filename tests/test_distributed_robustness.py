"""Data-parallel training under mpiexec, the rough edges: a short last batch is split over the
ranks (some get no rows), the regularizers' penalty counts once in the logged loss, ranks that
differ in any setting are refused before training, a rank that stays away ends the job naming it
(XPANN_DIST_TIMEOUT), and ``xpann train`` under mpiexec shows one Error: line and each warning once."""

import json
import sys
import time

import numpy
import pytest

import distributed_worker
import xpann
from test_distributed import HERE, MPIEXEC, mpiexec


@pytest.fixture(scope="module")
def one_process_short_batches():
    return {case: (model.get_weights(), history)
            for case, (model, history, _) in distributed_worker.train_short_batches().items()}


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_every_batch_however_short_is_split_and_the_penalty_counts_once(tmp_path, ranks, one_process_short_batches):
    """160 rows in batches of 53 (a last batch of 1 row: ranks 1, 2 get none), of 7 (6 rows) and of 2
    (fewer rows than ranks: at 3 ranks one never gets a row; with an r2 metric too);
    SGD with momentum and Adam; BatchNormalization and Dropout; L2 on every kernel, with
    ReduceLROnPlateau and EarlyStopping watching the loss: weights and logged losses equal one
    process's."""
    out = tmp_path / "short.npz"
    result = mpiexec(ranks, sys.executable, HERE / "distributed_worker.py", "short_batches", out)
    assert result.returncode == 0, result.stderr
    with numpy.load(out) as stored:
        histories = json.loads(str(stored["history"]))
        for case, (weights, history) in one_process_short_batches.items():
            for i, want in enumerate(weights):
                numpy.testing.assert_allclose(stored[f"{case}/{i}"], want, rtol=1e-9, atol=1e-11,
                                              err_msg=f"{case}: weight {i} on {ranks} ranks")
            assert histories[case].keys() == history.keys()
            for key, values in history.items():
                numpy.testing.assert_allclose(histories[case][key], values, rtol=1e-9, atol=1e-12,
                                              err_msg=f"{case}: {key} on {ranks} ranks")


MISMATCHES = {
    "activation": "the same model on every rank: rank 1 has model['layers'][0]['config']['activation']"
                  "['class_name'] = 'Tanh' where rank 0 has 'ReLU'",
    "dropout": "rank 1 has model['layers'][1]['config']['rate'] = 0.3 where rank 0 has 0.2",
    "batch_normalization": "rank 1 has model['layers'][1]['config']['momentum'] = 0.2 where rank 0 has 0.1",
    "regularizer": "rank 1 has model['layers'][0]['config']['kernel_regularizer'] = {'class_name': 'L2'",
    "validation": "the same validation_data on every rank: rank 1 has validation_data['x checksum'] = ",
    "initial_epoch": "the same initial_epoch on every rank, got rank 0: 0, rank 1: 1",
    "metrics": "the same metrics on every rank: rank 1 has metrics = ['accuracy'] where rank 0 has []",
    "callbacks": "the same callbacks on every rank: rank 1 has callbacks[0][1]['patience'] = 2 where rank 0 has 1",
    "check_same": "the same preprocessing on every rank: rank 1 has preprocessing['columns'][0]['mean'] = 1.5 "
                  "where rank 0 has 0.5",
}


def test_ranks_that_differ_in_any_setting_are_refused_naming_it_and_the_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("XPANN_DIST_TIMEOUT", "20")  # before the check, initial_epoch and metrics hung
    out = tmp_path / "messages.json"
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "mismatches", out, timeout=90)
    assert result.returncode == 0, result.stderr
    messages = json.loads(out.read_text())
    assert messages.keys() == MISMATCHES.keys()
    for case, expected in MISMATCHES.items():
        assert messages[case] is not None, f"{case}: trained without complaint"
        assert messages[case].startswith("Data-parallel training needs the same "), messages[case]
        assert expected in messages[case], (case, messages[case])


def test_check_same_in_a_world_of_one_is_nothing():
    assert xpann.distributed.world_size() == 1
    assert xpann.distributed.check_same("preprocessing", {"anything": object()}) is None


def test_a_rank_that_stays_away_past_the_timeout_ends_the_job_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XPANN_DIST_TIMEOUT", "3")
    start = time.monotonic()
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "sleep", tmp_path / "unused", timeout=35)
    took = time.monotonic() - start
    assert result.returncode != 0
    assert took < 30, took  # rank 1 sleeps 40 s: the job did not wait for it
    assert "xpann: rank 0 of 2 failed: waited 3 s (XPANN_DIST_TIMEOUT) in the broadcast of rank 0's decision " \
           "to stop or go on (after epoch 1): rank 1 did not arrive" in result.stderr, result.stderr


def test_a_bad_timeout_is_refused(monkeypatch):
    from xpann.distributed._worlds import collective_timeout

    monkeypatch.setenv("XPANN_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="XPANN_DIST_TIMEOUT must be a number of seconds >= 0"):
        collective_timeout()
    monkeypatch.setenv("XPANN_DIST_TIMEOUT", "0")
    assert collective_timeout() == 0
    monkeypatch.delenv("XPANN_DIST_TIMEOUT")
    assert collective_timeout() == xpann.distributed.DEFAULT_TIMEOUT == 600


def xpann_command():
    command = MPIEXEC.parent / "xpann"
    return [str(command)] if command.exists() else [sys.executable, "-m", "xpann_cli"]


def test_the_cli_under_mpiexec_fails_with_one_error_line(tmp_path):
    result = mpiexec(2, *xpann_command(), "train", tmp_path / "missing.csv", "--target", "y", timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert [line for line in output.splitlines() if line.startswith("Error:")] == [
        f"Error: No such file: {tmp_path / 'missing.csv'}."], output
    assert "Traceback" not in output


def test_the_cli_under_mpiexec_warns_once(tmp_path):
    rng = numpy.random.default_rng(0)
    lines = ["a,b,target"]
    for i in range(40):
        a, b = rng.standard_normal(2)
        lines.append(f"{a:.3f},{'oops' if i == 5 else f'{b:.3f}'},{'yes' if a + b > 0 else 'no'}")
    (tmp_path / "odd.csv").write_text("\n".join(lines) + "\n")
    result = mpiexec(2, *xpann_command(), "train", tmp_path / "odd.csv", "--target", "target", "--epochs", "1",
                     "--hidden", "4", "--out", tmp_path / "odd.npz", timeout=60)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    warned = [line for line in output.splitlines() if line.startswith("Warning:")]
    assert len(warned) == 1 and warned[0].startswith("Warning: Column 'b' holds numbers except 'oops'"), output
    assert "Traceback" not in output


def test_other_commands_under_mpiexec_run_on_rank_0_alone(tmp_path):
    from click.testing import CliRunner

    from xpann_cli.main import cli

    model = tmp_path / "wine.npz"
    trained = CliRunner().invoke(cli, ["train", "--dataset", "wine", "--epochs", "1", "--hidden", "4", "--out",
                                       str(model)])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "predictions.csv"
    result = mpiexec(2, *xpann_command(), "predict", model, "--dataset", "wine", "--out", out, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Wrote 178 predictions") == 1 and "Data-parallel" not in result.stdout
    assert len(out.read_text().splitlines()) == 179
