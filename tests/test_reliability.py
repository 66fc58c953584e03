"""Holes found by attacking the CLI and the API: a closed pipe, outputs pointed at inputs, piped
input, hostile class lists, a failed construction, numpy integers, nothing to measure."""

import hashlib
import json
import os
import subprocess
import sys
import threading

import numpy
import pytest

import xpann
from xpann.tabular import load

from cli_runner import run

IRIS = xpann.datasets.csv_path("iris")
XPANN = [sys.executable, "-m", "xpann_cli"]


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_train_into_a_closed_pipe_finishes_and_saves(tmp_path):
    out = tmp_path / "m.npz"
    done = subprocess.run(f"{' '.join(XPANN)} train --dataset iris --epochs 30 --out {out} | head -1",
                          shell=True, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.count("\n") == 1 and done.stderr == ""
    assert load(out).evaluate(IRIS)["accuracy"] > 0.8  # trained to the end and saved


def test_json_outputs_never_overwrite_inputs_or_other_files(tmp_path):
    data = tmp_path / "train.csv"
    data.write_bytes(open(IRIS, "rb").read())
    model = tmp_path / "m.npz"
    run("train", data, "--target", "target", "--epochs", 1, "--out", model)
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    for command, target in (("diagnose", data), ("diagnose", model), ("bench", data), ("bench", model)):
        arguments = [command, "--json", target]
        arguments += [data, "--target", "target", "--epochs", 1] if command == "diagnose" else [
            "--batch-sizes", "4", "--steps", "1", "--repeats", "1", "--warmup", "0", "--backends", "numpy"]
        result = run(*arguments, ok=False)
        assert result.exit_code == 1
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and str(target) in errors[0], result.output
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before


def test_outputs_to_a_device_are_written_to_it_not_replaced(tmp_path):
    link = tmp_path / "out.csv"
    os.symlink(os.devnull, link)
    model = tmp_path / "m.npz"
    run("train", "--dataset", "iris", "--epochs", 1, "--out", model)
    run("predict", model, IRIS, "--out", link)
    assert os.path.islink(link) and os.readlink(link) == os.devnull


def test_standard_input_is_read_for_a_dash_and_for_a_pipe(tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--dataset", "iris", "--epochs", 1, "--out", model)
    expected = run("predict", model, IRIS).stdout
    for name in ("-", "/dev/stdin"):
        with open(IRIS, "rb") as stream:
            done = subprocess.run([*XPANN, "predict", str(model), name], stdin=stream, capture_output=True,
                                  timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode() == expected


def test_a_model_file_with_repeated_classes_is_refused(tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--dataset", "iris", "--epochs", 1, "--out", model)
    loaded = xpann.load_model(model)
    loaded.metadata["tabular"]["target"]["classes"] = ["setosa", "setosa", "virginica"]
    loaded.save(tmp_path / "hostile.npz")
    result = run("predict", tmp_path / "hostile.npz", IRIS, ok=False)
    assert "the classes must be two or more different labels" in result.output
    assert "hostile.npz" in result.output


def test_a_failed_sequential_leaves_its_layers_free():
    dense = xpann.layers.Dense(4)
    with pytest.raises(ValueError, match="Sequential takes xpann layers"):
        xpann.Sequential([dense, "not a layer"], input_dim=3)
    with pytest.raises(ValueError, match="input_dim"):
        xpann.Sequential([dense], input_dim=0)
    assert xpann.Sequential([dense], input_dim=3).count_params() == 16


def test_numpy_integers_are_whole_numbers():
    x = numpy.ones((8, 2), dtype="float32")
    model = xpann.Sequential([xpann.layers.Dense(1)], input_dim=2, seed=0)
    model.compile("sgd", "mse")
    history = model.fit(x, numpy.ones(8, dtype="float32"), batch_size=numpy.int64(4), epochs=numpy.int32(2),
                        verbose=0)
    assert len(history.history["loss"]) == 2


def test_concurrent_evaluate_and_predict_give_the_single_threaded_numbers():
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = xpann.Sequential([xpann.layers.Dense(16, activation="relu"), xpann.layers.Dense(2, activation="softmax")],
                             input_dim=8, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    expected = {rows: (model.evaluate(x[:rows], y[:rows]), model.predict(x[:rows])) for rows in (100, 512)}
    wrong = []

    def work(rows):
        for _ in range(25):
            results, predictions = model.evaluate(x[:rows], y[:rows]), model.predict(x[:rows])
            if results != expected[rows][0] or not numpy.array_equal(predictions, expected[rows][1]):
                wrong.append(rows)

    threads = [threading.Thread(target=work, args=(100 if i % 2 else 512,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_evaluate_json_names_standard_input_as_such(tmp_path):
    model = tmp_path / "m.npz"
    run("train", IRIS, "--target", "target", "--epochs", 1, "--out", model)
    with open(IRIS, "rb") as stream:
        done = subprocess.run([*XPANN, "evaluate", str(model), "-", "--json"], stdin=stream, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 150
    assert "Warning: standard input is the file the model was trained on" in done.stderr


def test_predictions_to_dev_stdout_redirected_to_a_file_all_arrive(tmp_path):
    model = tmp_path / "m.npz"
    run("train", "--dataset", "iris", "--epochs", 1, "--out", model)
    with open(tmp_path / "out.csv", "w") as stream:
        done = subprocess.run([*XPANN, "predict", str(model), IRIS, "--out", "/dev/stdout"], stdout=stream,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 151 and lines[0].startswith("sepal_length_cm,") and "prediction" in lines[0]
    assert "Wrote 150 predictions" in done.stderr


def test_an_infinite_target_cell_is_one_error_without_numpy_noise(tmp_path):
    rng = numpy.random.default_rng(0)
    rows = ["a,b,y"] + [f"{a:.3f},{b:.3f},{3 * a:.3f}" for a, b in rng.normal(size=(40, 2))]
    rows[5] = "1.0,2.0,inf"
    (tmp_path / "inf.csv").write_text("\n".join(rows) + "\n")
    result = run("train", tmp_path / "inf.csv", "--target", "y", "--out", tmp_path / "m.npz", ok=False)
    assert "RuntimeWarning" not in result.output and "Warning:" not in result.output
    assert "Error: " in result.output and "'y' holds an infinite value (line 6)" in result.output
