"""A run that blows up stops with the last good weights *and* optimizer state, even when the loss
of its last epoch still looked finite; such a model is never saved by xpann train."""

import numpy
import pytest

import xpann
from xpann.errors import TrainingHealthWarning

from cli_runner import run


def regression(n=64, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (1000.0 * x[:, :1] + 500.0).astype("float32")


def model_with(optimizer):
    model = xpann.Sequential([xpann.layers.Dense(4, activation="relu"), xpann.layers.Dense(1)], input_dim=3, seed=0)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_a_last_update_that_overflows_the_weights_stops_training_and_puts_them_back():
    x, y = regression()
    model = model_with(xpann.optimizers.SGD(learning_rate=1e38))
    start = model.get_weights()
    with pytest.warns(TrainingHealthWarning, match="Epoch 1: a weight is no longer finite after the epoch's last "
                                                   "update; training stopped"):
        history = model.fit(x, y, epochs=3, batch_size=len(x), verbose=0)  # one step an epoch
    assert numpy.isfinite(history.history["loss"][0])  # the loss was taken before the update
    assert len(history.history["loss"]) == 1 and model.weights_finite()
    for before, after in zip(start, model.get_weights()):
        assert numpy.array_equal(before, after)


def test_after_a_nan_stop_the_optimizer_state_is_put_back_and_training_can_go_on():
    x, y = regression()
    optimizer = xpann.optimizers.Adam(learning_rate=1e38)
    model = model_with(optimizer)
    with pytest.warns(TrainingHealthWarning, match="training stopped"):
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    scalars, slots = optimizer.get_state()
    assert scalars["iterations"] == 0
    for name, slot in slots.items():
        assert not numpy.any(numpy.asarray(slot)), name  # the zeros it was built with
    optimizer.learning_rate = 1e-3
    later = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert all(numpy.isfinite(later.history["loss"]))
    assert optimizer.get_state()[0]["iterations"] == 8


def test_xpann_train_saves_nothing_when_the_last_update_blows_up(tmp_path):
    rng = numpy.random.default_rng(0)
    rows = ["a,b,y"] + [f"{a:.3f},{b:.3f},{1000 * a + 5:.3f}" for a, b in rng.normal(size=(40, 2))]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.npz"
    result = run("train", tmp_path / "d.csv", "--target", "y", "--lr", "1e30", "--optimizer", "nadam",
                 "--batch-size", 1000, "--epochs", 1, "--val-split", 0, "--out", out, ok=False)
    assert "Error: Training failed in epoch 1" in result.output and "No model was saved" in result.output
    assert not out.exists()
