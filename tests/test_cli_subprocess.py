"""The command line as a person runs it: a real process (``python -m xpann_cli``, the same program as
the ``xpann`` script), default options, on every bundled data set."""

import json
import os
import shutil
import subprocess
import sys

import pandas
import pytest

import xpann

TARGET = xpann.datasets.TARGET_COLUMN


def xpann_process(*args, cwd, ok=True):
    environment = {**os.environ, "XPANN_BACKEND": "numpy", "COLUMNS": "100"}
    result = subprocess.run([sys.executable, "-m", "xpann_cli", *map(str, args)], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=120)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("name", xpann.datasets.names())
def test_train_evaluate_predict_in_a_real_process(name, tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path(name))
    held_out = frame.iloc[1::4]
    frame.drop(held_out.index).to_csv(tmp_path / "train.csv", index=False)
    held_out.drop(columns=[TARGET]).to_csv(tmp_path / "rows.csv", index=False)
    held_out.to_csv(tmp_path / "held_out.csv", index=False)

    trained = xpann_process("train", "train.csv", "--target", TARGET, cwd=tmp_path)
    assert "Saved the model to model.npz" in trained.stdout and "samples/s" in trained.stdout
    assert "Epoch 1/" in trained.stdout  # one line per epoch when the output is not a terminal

    metrics = json.loads(xpann_process("evaluate", "model.npz", "held_out.csv", "--target", TARGET, "--json",
                                       cwd=tmp_path).stdout)["metrics"]
    predicted = xpann_process("predict", "model.npz", "rows.csv", cwd=tmp_path)
    (tmp_path / "predictions.csv").write_text(predicted.stdout)
    predictions = pandas.read_csv(tmp_path / "predictions.csv")["prediction"].to_numpy()
    truth = held_out[TARGET].to_numpy()
    if xpann.datasets.load(name).task == "classification":
        chance = held_out[TARGET].value_counts(normalize=True).max()
        assert (predictions == truth).mean() >= max(0.8, chance + 0.2)
        assert metrics["accuracy"] == pytest.approx((predictions == truth).mean())
    else:
        r2 = 1 - ((predictions - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
        assert r2 > 0.25 and metrics["r2"] == pytest.approx(r2, abs=1e-3)


def test_a_mistake_in_a_real_process_is_one_line_on_standard_error(tmp_path):
    result = xpann_process("train", "nowhere.csv", "--target", "y", cwd=tmp_path, ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: No such file: nowhere.csv."
    debug = subprocess.run([sys.executable, "-m", "xpann_cli", "--debug", "train", "nowhere.csv", "--target", "y"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_the_installed_xpann_script(tmp_path):
    script = shutil.which("xpann", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the xpann console script is not installed beside this Python (pip install -e .)")
    result = subprocess.run([script, "info"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"xpann       {xpann.__version__}")
    assert "Backends:" in result.stdout


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """xpann predict ... | head -2: the closed pipe ends the command quietly, with exit status 0."""
    xpann_process("train", "--dataset", "iris", "--epochs", 1, "--out", "m.npz", cwd=tmp_path)
    rows = pandas.read_csv(xpann.datasets.csv_path("iris"))
    pandas.concat([rows] * 40).to_csv(tmp_path / "many.csv", index=False)  # 6,000 rows: more than a pipe holds
    environment = {**os.environ, "XPANN_BACKEND": "numpy"}
    process = subprocess.Popen([sys.executable, "-m", "xpann_cli", "predict", "m.npz", "many.csv"], cwd=tmp_path,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    assert first[0].startswith(b"sepal_length_cm,") and stderr == ""
