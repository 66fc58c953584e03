"""Rough edges a new user met: each one pinned by a test that fails when it comes back."""

import io
import json
import os
import re

import numpy
import pytest

import xpann


class Terminal(io.StringIO):
    """An 80-column terminal, as far as the progress bar can tell."""

    def isatty(self):
        return True


def test_the_progress_bar_never_cuts_the_epoch_numbers_on_a_narrow_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = xpann.Sequential([xpann.layers.Dense(8, activation="relu"), xpann.layers.Dense(3, activation="softmax")],
                             input_dim=4, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy", "macro_f1"])
    terminal = Terminal()
    logger = xpann.callbacks.ProgressLogger(1, 2, 4, stream=terminal)
    assert logger.use_bar
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25, callbacks=[logger])
    screen = [part for line in terminal.getvalue().split("\n") for part in [line.split("\r")[-1]] if part.strip()]
    assert len(screen) == 2  # the bars are gone, one line per epoch stays
    for epoch, line in enumerate(screen):
        values = {name: history.history[name][epoch] for name in ("loss", "accuracy", "macro_f1", "val_loss")}
        for name, value in values.items():
            assert f"{name}: {value:.4f}" in line, line
        assert re.match(rf"Epoch {epoch + 1}/2 - \d+\.\d\ds - loss: ", line), line


def test_the_time_line_and_info_report_the_blas_threads_a_fit_ran_on(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    command = [sys.executable, "-m", "xpann_cli", "train", "--dataset", "wine", "--epochs", "1", "--hidden", "600,600",
               "--batch-size", "64", "--out", str(tmp_path / "m.npz")]  # 64 x 600 x 600: a large product
    for setting, threads in (("1", 1), ("2", 2)):
        done = subprocess.run(command, env={**env, "XPANN_BLAS_THREADS": setting}, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        time_line = next(line for line in done.stdout.splitlines() if line.startswith("Time:"))
        assert time_line.endswith(f", {threads} thread{'s' if threads > 1 else ''}).")
        info = subprocess.run([sys.executable, "-m", "xpann_cli", "info"], env={**env, "XPANN_BLAS_THREADS": setting},
                              capture_output=True, text=True, timeout=60).stdout
        assert f"BLAS in fit {threads} thread(s) for small products, {threads} for large ones" in info


def test_a_frame_with_nullable_floats_is_numbers_and_one_row_gets_the_right_hint():
    import pandas
    import pytest

    frame = pandas.DataFrame({"a": pandas.array([0.5, 1.5, 2.0, 3.5], dtype="Float64"),
                              "b": pandas.array([1, 2, 3, 4], dtype="Int64")})
    model = xpann.Sequential([xpann.layers.Dense(1)], input_dim=2, seed=0)
    model.compile("sgd", "mse")
    model.fit(frame, pandas.Series([1.0, 2.0, 3.0, 4.0], dtype="Float64"), epochs=1, verbose=0)
    assert model.predict(frame).shape == (4, 1)
    gappy = frame.copy()
    gappy.loc[1, "a"] = None
    with pytest.raises(ValueError, match="contains NaN or infinite values; impute or drop them first"):
        model.predict(gappy)
    with pytest.raises(ValueError, match=r"For one sample of 2 features use x.reshape\(1, -1\)"):
        model.predict(numpy.array([0.5, 1.0], dtype="float32"))


def test_the_target_encoder_given_a_frame_says_to_give_a_column():
    import pandas
    import pytest

    frame = pandas.DataFrame({"y": ["a", "b", "a"]})
    with pytest.raises(ValueError, match=r"takes the target column as a Series \(frame\['y'\]\), not a DataFrame"):
        xpann.preprocessing.TargetEncoder("classification").fit(frame)
    with pytest.raises(ValueError, match="not a DataFrame"):
        xpann.preprocessing.infer_task(frame)


def test_train_says_which_rows_hold_unseen_categories_and_when_more_epochs_may_help(tmp_path):
    import pandas
    from cli_runner import run

    rng = numpy.random.default_rng(0)
    town = list(rng.choice(["Lyon", "Paris"], 60))
    frame = pandas.DataFrame({"town": town + ["Brest"], "x": rng.normal(size=61), "y": rng.choice(["a", "b"], 61)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    # a seed whose split puts the lone Brest row among the validation rows
    seed = next(s for s in range(100) if 60 in xpann.preprocessing.split_rows(61, 0.2, s, frame["y"])[1])
    result = run("train", tmp_path / "d.csv", "--target", "y", "--epochs", 2, "--seed", seed, "--out", tmp_path / "m.npz")
    assert "Warning: Column 'town': 1 validation row(s) hold categories not seen in the training rows " \
           "('Brest')" in result.stderr
    if "Kept the weights of epoch 2 of 2" in result.output:
        assert "The last epoch was the best: more epochs may do better (--epochs 4, say)." in result.output


def test_forced_classification_of_a_measurement_warns_and_regression_predictions_carry_7_digits(tmp_path):
    import pandas
    from cli_runner import run

    rng = numpy.random.default_rng(0)
    measured = pandas.DataFrame({"x": rng.normal(size=274), "y": rng.integers(0, 88, 274) * 1.5 + 0.25})
    measured.to_csv(tmp_path / "m.csv", index=False)
    distinct = measured["y"].nunique()
    result = run("train", tmp_path / "m.csv", "--target", "y", "--task", "classification", "--epochs", 1,
                 "--val-split", 0, "--out", tmp_path / "c.npz")
    assert (f"Warning: Target 'y' holds numbers with {distinct} distinct values, {274 / distinct:.1f} rows per class "
            "on average: as classes they say little; --task regression predicts them as numbers.") in result.stderr
    frame = pandas.DataFrame({"x": rng.normal(size=120)})
    frame["price"] = (4718.528955088573 + 1000 * frame["x"]).round(6)
    frame.to_csv(tmp_path / "d.csv", index=False)
    run("train", tmp_path / "d.csv", "--target", "price", "--epochs", 1, "--out", tmp_path / "r.npz")
    written = run("predict", tmp_path / "r.npz", tmp_path / "d.csv").stdout.splitlines()
    header = written[0].split(",")
    column = header.index("prediction")
    for line in written[1:]:
        digits = line.split(",")[column].lstrip("-").replace(".", "").lstrip("0").split("e")[0]
        assert len(digits) <= 7, line


def test_evaluate_says_what_it_filled_and_debug_works_after_the_command(tmp_path):
    import pandas
    from click.testing import CliRunner
    from cli_runner import run
    from xpann_cli.main import cli

    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})
    frame["y"] = numpy.where(frame["x"] > 0, "up", "down")
    frame.to_csv(tmp_path / "d.csv", index=False)
    run("train", tmp_path / "d.csv", "--target", "y", "--epochs", 1, "--out", tmp_path / "m.npz")
    frame.loc[[3, 5], "z"] = None
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    result = run("evaluate", tmp_path / "m.npz", tmp_path / "gaps.csv")
    assert "Filled 2 missing value(s) as in training: z 2." in result.stderr
    broken = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "none.csv"), "--debug"])
    assert broken.exit_code != 0 and isinstance(broken.exception, ValueError)  # --debug: the exception itself
    again = run("train", tmp_path / "d.csv", "--target", "y", "--epochs", 1, "--out", tmp_path / "m.npz")
    assert "Saved the model to " in again.output and "(it replaced the model that was there)." in again.output


def test_counts_carry_thousands_separators(tmp_path):
    import pandas
    from cli_runner import run

    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"x": rng.normal(size=1500)})
    frame["y"] = (frame["x"] * 1000).round(3)
    frame.to_csv(tmp_path / "d.csv", index=False)
    trained = run("train", tmp_path / "d.csv", "--target", "y", "--epochs", 1, "--out", tmp_path / "m.npz").output
    assert f"holds numbers with {frame['y'].nunique():,} distinct values" in trained and "1,500 rows" in trained
    diagnosed = run("diagnose", tmp_path / "d.csv", "--target", "y", "--epochs", 1, "--batch-size", 1).output
    assert "batch 1 (1,500 steps an epoch)" in diagnosed
    model = xpann.Sequential([xpann.layers.Dense(1000), xpann.layers.BatchNormalization()], input_dim=3)
    lines = []
    model.summary(print_fn=lines.append)
    assert "4,000" in lines[0] and "Total parameters: 6,000 (and 2,000 non-trainable state values)" in lines[0]


def test_the_fused_kernels_compile_once_and_later_processes_load_them_from_disk(tmp_path):
    """Rough edge 6: the first epoch paid for compiling. numba writes the machine code to its cache
    the first time; a second process finds every kernel it runs there and compiles none."""
    pytest.importorskip("numba")
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import json
        import numpy, xpann
        from xpann.backend import _fused
        x = numpy.random.default_rng(0).normal(size=(64, 5)).astype("float32")
        y = (x[:, 0] > 0).astype(int)
        model = xpann.Sequential([xpann.layers.Dense(8, activation="relu"), xpann.layers.Dense(2, activation="softmax")],
                                 input_dim=5, seed=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        used = {name: kernel.stats for name, kernel in _fused._load().items() if kernel.signatures}
        print(json.dumps({name: [sum(s.cache_hits.values()), sum(s.cache_misses.values())]
                          for name, s in used.items()}))
    """)
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "XPANN_FUSED": "1"}
    runs = [json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                      env=environment, timeout=300).stdout) for _ in range(2)]
    first, second = runs
    assert "adam" in first and all(misses > 0 for _, misses in first.values())  # compiled, then cached
    assert second.keys() == first.keys()
    assert all(hits > 0 and misses == 0 for hits, misses in second.values()), second  # loaded, nothing compiled
    assert any((tmp_path / "cache").rglob("*.nbi"))
