"""``xpann bench`` with tiny sizes: the table, the unavailable backends and their reasons, the JSON.

Speed is never asserted here: these tests check that the command runs and reports, not how fast.
"""

import json

import pytest
from click.testing import CliRunner

from xpann_cli.main import cli
from xpann.backend import backend_status

TINY = ["--batch-sizes", "4,16", "--hidden", "8,8", "--features", "5", "--classes", "3",
        "--steps", "3", "--repeats", "2", "--warmup", "1"]


def run(*arguments):
    result = CliRunner().invoke(cli, ["bench", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_prints_a_row_per_batch_size_and_lists_every_backend(tmp_path):
    path = tmp_path / "bench.json"
    output = run(*TINY, "--json", str(path))
    lines = output.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("batch"))
    assert "numpy samples/s" in header and "cupy samples/s" in header and "GPU/CPU" in header
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("4", "16")]
    assert [row[0] for row in rows] == ["4", "16"]
    assert "Crossover" in output
    reason = backend_status()["cupy"]
    if reason is not None:
        assert "cupy: unavailable" in output
        assert reason.split(".")[0] in output

    document = json.loads(path.read_text())
    assert document["command"] == "xpann bench"
    assert document["settings"]["batch_sizes"] == [4, 16]
    environment = document["environment"]
    for key in ("date", "cpu", "cores", "python", "libraries", "backends"):
        assert key in environment
    assert "numpy" in environment["libraries"] and "xpann" in environment["libraries"]
    numpy_device = environment["backends"]["numpy"]
    assert numpy_device["available"] is True
    assert "blas" in numpy_device
    numpy_rows = document["results"]["numpy"]
    assert [row["batch_size"] for row in numpy_rows] == [4, 16]
    for row in numpy_rows:
        assert row["samples_per_second"] > 0 and row["step_seconds"] > 0
        assert len(row["seconds"]) == 2
        assert row["step_flops"] > 0
    if reason is not None:
        assert document["unavailable"]["cupy"] == reason
        assert environment["backends"]["cupy"] == {"available": False, "reason": reason}
        assert document["crossover_batch_size"] is None


def test_bench_on_numpy_only_with_adam_in_float64():
    output = run(*TINY, "--backends", "numpy", "--optimizer", "adam", "--dtype", "float64")
    assert "adam, float64" in output
    assert "cupy samples/s" not in output and "cupy: " not in output


def test_a_batch_smaller_than_the_class_count_runs():
    output = run("--batch-sizes", "8", "--classes", "10", "--hidden", "8", "--features", "5",
                 "--steps", "1", "--repeats", "1", "--warmup", "0", "--backends", "numpy")
    assert "\n    8 " in output


def test_nothing_to_measure_is_an_error_naming_why():
    reason = backend_status()["cupy"]
    if reason is None:
        pytest.skip("cupy works here; this test is for machines without a GPU")
    result = CliRunner().invoke(cli, ["bench", *TINY, "--backends", "cupy"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: Nothing to measure: no backend asked for is available (cupy: {reason})."]


@pytest.mark.parametrize("arguments, message", [
    (["--batch-sizes", "0,8"], "--batch-sizes"),
    (["--backends", "tpu"], "backends"),
    (["--optimizer", "nope"], "nope"),
    (["--hidden", "a,b"], "--hidden"),
])
def test_bad_arguments_are_one_clear_message(arguments, message):
    result = CliRunner().invoke(cli, ["bench", *TINY, *arguments])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unwritable_json_path_fails_before_measuring(tmp_path):
    result = CliRunner().invoke(cli, ["bench", *TINY, "--json", str(tmp_path / "missing" / "r.json")])
    assert result.exit_code != 0
    assert "does not exist" in result.output and "numpy samples/s" not in result.output
