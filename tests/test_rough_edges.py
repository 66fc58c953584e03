"""Rough edges a new user met: each one pinned by a test that fails when it comes back."""

import io
import re

import numpy

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
