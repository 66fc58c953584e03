"""The gradient summed in buckets while backward runs (XPANN_DIST_OVERLAP=1): the buckets cover
the flat gradient once, in backward order; under mpiexec at 2 and 3 ranks, training equals the
whole-gradient sum after backward bit for bit (float32 and float64, BatchNormalization, a short
last batch that leaves ranks without rows); a rank that stops mid-backward ends the job, named."""

import json
import sys

import pytest

import distributed_worker
import xpann
from test_distributed import HERE, mpiexec
from xpann import layers
from xpann.distributed import _training


def normalized_model(dtype):
    return xpann.Sequential([layers.Dense(8, use_bias=False, name="hidden"), layers.BatchNormalization(name="norm"),
                             layers.Activation("relu", name="relu"),
                             layers.Dense(3, activation="softmax", name="output")], input_dim=6, seed=0, dtype=dtype)


@pytest.mark.parametrize("bucket_bytes, dtype, expected", [
    (1, "float32", [(64, 91, "output"), (48, 64, "norm"), (0, 48, "hidden")]),
    (150, "float32", [(48, 91, "norm, output"), (0, 48, "hidden")]),
    (150, "float64", [(64, 91, "output"), (0, 64, "hidden, norm")]),
    (10**6, "float64", [(0, 91, "hidden, norm, output")]),
])
def test_buckets_cover_the_gradient_once_from_its_end(bucket_bytes, dtype, expected):
    """hidden: 48 weights, norm: 16, output: 27; a bucket closes at bytes >= bucket_bytes."""
    plan = normalized_model(dtype)._plan
    buckets = _training.gradient_buckets(plan, bucket_bytes)
    got = [(span.start, span.stop, what) for span, what in buckets.values()]
    assert got == [(start, stop, f"the gradient all-reduce of {names}") for start, stop, names in expected]


def test_the_switch_reads_0_or_1(monkeypatch):
    monkeypatch.delenv(_training.OVERLAP_VARIABLE, raising=False)
    assert _training.overlap_requested() is _training.DEFAULT_OVERLAP
    for text, wanted in (("0", False), ("1", True), (" 1 ", True)):
        monkeypatch.setenv(_training.OVERLAP_VARIABLE, text)
        assert _training.overlap_requested() is wanted
    monkeypatch.setenv(_training.OVERLAP_VARIABLE, "yes")
    with pytest.raises(ValueError, match="XPANN_DIST_OVERLAP must be 0 .* or 1"):
        _training.overlap_requested()


@pytest.mark.parametrize("ranks", [2, 3])
def test_bucketed_sums_during_backward_equal_the_whole_sum_bit_for_bit(tmp_path, ranks):
    out = tmp_path / "overlap.json"
    result = mpiexec(ranks, sys.executable, HERE / "distributed_worker.py", "overlap", out)
    assert result.returncode == 0, result.stderr
    found = json.loads(out.read_text())
    assert sorted(found) == sorted(f"{dtype}/{case}" for dtype in ("float32", "float64")
                                   for case in distributed_worker.OVERLAP_CASES)
    for case, runs in found.items():
        assert runs["equal"] == [True] * len(distributed_worker.OVERLAP_BUCKETS), (case, ranks)
        whole, every_layer, _ = runs["collectives"]
        assert every_layer > whole, (case, runs)  # buckets of 1 byte: one all-reduce per trainable layer


def test_a_rank_that_stops_mid_backward_ends_the_job_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XPANN_DIST_TIMEOUT", "1")
    result = mpiexec(2, sys.executable, HERE / "distributed_worker.py", "sleep_in_backward", tmp_path / "unused",
                     timeout=30)
    assert result.returncode != 0
    assert "xpann: rank 0 of 2 failed: waited 1 s (XPANN_DIST_TIMEOUT) in the gradient all-reduce of " in result.stderr
    assert " (epoch 1, batch 2): rank 1 did not arrive" in result.stderr, result.stderr
