"""Callbacks in fit: History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN
and user callbacks.

Where the exact epoch matters, a ``Script`` callback placed first overwrites the monitored value
with a scripted sequence, so the callback under test sees known numbers (History has already
recorded the real ones)."""

import math
import os
import warnings

import numpy
import pytest

import xpann
from conftest import assert_weights_equal
from xpann.callbacks import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from xpann.errors import TrainingHealthWarning
from xpann.layers import Dense


def data(n=60, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(numpy.int64)
    return x, y


def model(seed=0, learning_rate=0.01, dtype="float64"):
    net = xpann.Sequential([Dense(8, activation="tanh"), Dense(2, activation="softmax")],
                           input_dim=4, seed=seed, dtype=dtype)
    net.compile(xpann.optimizers.Adam(learning_rate=learning_rate), "sparse_categorical_crossentropy",
                metrics=["accuracy"])
    return net


class Script(Callback):
    """Replaces ``logs[key]`` with ``values[epoch]`` for the callbacks after it."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key = list(values), key

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = float(self.values[epoch])


class Recorder(Callback):
    """Keeps the weights and the learning rate at the end of each epoch."""

    def on_train_begin(self, logs=None):
        self.weights, self.learning_rates, self.logs = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.learning_rates.append(self.model.optimizer.learning_rate)
        self.logs.append(dict(logs))


# ----- History and user callbacks -------------------------------------------------------------


def test_history_is_always_on_and_restarts_with_each_fit():
    x, y = data()
    net = model()
    first = net.fit(x, y, epochs=3, verbose=0)
    assert type(first) is History and first is net.history
    assert first.epoch == [0, 1, 2] and len(first.history["loss"]) == 3
    second = net.fit(x, y, epochs=2, verbose=0)
    assert second is net.history
    assert second.epoch == [0, 1] and len(second.history["loss"]) == 2 and len(second.history["accuracy"]) == 2


def test_a_user_callback_sees_every_hook_in_order():
    x, y = data(n=20)
    events = []

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_train_batch_end(self, batch, logs=None):
            events.append(f"batch {batch}")

        def on_epoch_end(self, epoch, logs=None):
            assert set(logs) == {"loss", "accuracy"}
            events.append(f"epoch_end {epoch}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    spy = Spy()
    net = model()
    net.fit(x, y, epochs=2, batch_size=10, callbacks=[spy], verbose=0)
    assert spy.model is net
    assert events == ["train_begin", "epoch_begin 0", "batch 0", "batch 1", "epoch_end 0",
                      "epoch_begin 1", "batch 0", "batch 1", "epoch_end 1", "train_end"]


def test_a_callback_can_stop_training():
    x, y = data()

    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = model().fit(x, y, epochs=10, callbacks=[StopAfterTwo()], verbose=0)
    assert history.epoch == [0, 1]


def test_callbacks_must_be_callback_objects():
    x, y = data()
    with pytest.raises(ValueError, match="Callback"):
        model().fit(x, y, epochs=1, callbacks=[lambda epoch: None], verbose=0)


# ----- EarlyStopping --------------------------------------------------------------------------


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience):
    x, y = data()
    scripted = [1.0, 0.8, 0.9, 0.85, 0.95, 0.99, 0.97, 0.98, 0.99, 1.0]  # best at epoch 1
    stopper = EarlyStopping(patience=patience)
    history = model().fit(x, y, epochs=10, callbacks=[Script(scripted), stopper], verbose=0)
    assert stopper.stopped_epoch == 1 + patience
    assert history.epoch == list(range(2 + patience))


def test_early_stopping_with_patience_0_stops_at_the_first_epoch_without_improvement():
    x, y = data()
    stopper = EarlyStopping(patience=0)
    history = model().fit(x, y, epochs=10, callbacks=[Script([1.0, 0.8, 0.7, 0.75, 0.6]), stopper], verbose=0)
    assert stopper.stopped_epoch == 3
    assert history.epoch == [0, 1, 2, 3]


def test_early_stopping_waits_while_the_monitor_improves():
    x, y = data()
    stopper = EarlyStopping(patience=1)
    history = model().fit(x, y, epochs=6, callbacks=[Script([6, 5, 4, 3, 2, 1]), stopper], verbose=0)
    assert history.epoch == list(range(6)) and stopper.stopped_epoch is None


def test_early_stopping_counts_min_delta():
    x, y = data()
    stopper = EarlyStopping(patience=0, min_delta=0.1)
    history = model().fit(x, y, epochs=6, callbacks=[Script([1.0, 0.95, 0.9, 0.5]), stopper], verbose=0)
    assert history.epoch == [0, 1]


def test_early_stopping_on_accuracy_maximises():
    x, y = data()
    stopper = EarlyStopping(monitor="val_accuracy", patience=0)
    scripted = Script([0.5, 0.7, 0.6, 0.9], key="val_accuracy")
    history = model().fit(x, y, epochs=6, validation_split=0.2, callbacks=[scripted, stopper], verbose=0)
    assert stopper.mode == "max"
    assert history.epoch == [0, 1, 2]


def test_restore_best_weights_leaves_the_best_epoch_weights():
    x, y = data()
    recorder = Recorder()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    net = model()
    net.fit(x, y, epochs=10, callbacks=[Script([1.0, 0.5, 0.9, 0.8, 0.7, 0.6]), recorder, stopper], verbose=0)
    assert stopper.best_epoch == 1
    assert len(recorder.weights) > 2
    assert_weights_equal(net.get_weights(), recorder.weights[1])


def test_without_restore_the_last_weights_stay():
    x, y = data()
    recorder = Recorder()
    net = model()
    net.fit(x, y, epochs=10, callbacks=[Script([1.0, 0.5, 0.9, 0.8, 0.7, 0.6]), recorder,
                                         EarlyStopping(patience=2)], verbose=0)
    assert_weights_equal(net.get_weights(), recorder.weights[-1])


def test_restore_best_weights_on_real_validation_loss():
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = (x[:, 0] + 1.5 * rng.normal(size=40) > 0).astype(int)  # noisy labels: it overfits quickly
    xv = rng.normal(size=(100, 5))
    yv = (xv[:, 0] > 0).astype(int)
    net = xpann.Sequential([Dense(64, activation="relu"), Dense(2, activation="softmax")], seed=0)
    net.compile(xpann.optimizers.Adam(learning_rate=0.02), "sparse_categorical_crossentropy", ["accuracy"])
    stopper = EarlyStopping(patience=3, restore_best_weights=True)
    history = net.fit(x, y, epochs=60, batch_size=8, validation_data=(xv, yv), callbacks=[stopper], verbose=0)
    val_loss = history.history["val_loss"]
    best = int(numpy.argmin(val_loss))
    assert stopper.stopped_epoch is not None and best < len(val_loss) - 1  # it did stop past the best
    assert stopper.best_epoch == best
    evaluated = net.evaluate(xv, yv)
    assert evaluated["loss"] == pytest.approx(val_loss[best], rel=1e-6)
    assert evaluated["accuracy"] == history.history["val_accuracy"][best]


def test_early_stopping_warns_when_its_monitor_is_not_logged():
    x, y = data()
    with pytest.warns(UserWarning, match="val_loss"):
        history = model().fit(x, y, epochs=3, callbacks=[EarlyStopping(patience=0)], verbose=0)
    assert history.epoch == [0, 1, 2]


def test_early_stopping_rejects_bad_arguments():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="sideways")


# ----- ModelCheckpoint ------------------------------------------------------------------------


def test_model_checkpoint_with_epoch_in_the_path_saves_every_epoch(tmp_path):
    x, y = data()
    recorder = Recorder()
    net = model()
    net.fit(x, y, epochs=3, callbacks=[recorder, ModelCheckpoint(tmp_path / "model_{epoch}.npz")], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["model_1.npz", "model_2.npz", "model_3.npz"]
    for epoch in range(3):
        assert_weights_equal(xpann.load_model(tmp_path / f"model_{epoch + 1}.npz").get_weights(),
                             recorder.weights[epoch])
    numpy.testing.assert_array_equal(xpann.load_model(tmp_path / "model_3.npz").predict(x), net.predict(x))


def test_model_checkpoint_save_best_only_keeps_the_best_epoch(tmp_path):
    x, y = data()
    recorder = Recorder()
    path = tmp_path / "best.npz"
    scripted = Script([1.0, 0.5, 0.7, 0.4, 0.9])
    model().fit(x, y, epochs=5, callbacks=[scripted, recorder, ModelCheckpoint(path, save_best_only=True)],
                verbose=0)
    assert os.listdir(tmp_path) == ["best.npz"]
    assert_weights_equal(xpann.load_model(path).get_weights(), recorder.weights[3])


def test_model_checkpoint_save_best_only_with_epoch_in_the_path(tmp_path):
    x, y = data()
    scripted = Script([1.0, 0.5, 0.7, 0.4, 0.9])
    checkpoint = ModelCheckpoint(str(tmp_path / "m-{epoch}-{val_loss:.1f}.npz"), save_best_only=True)
    model().fit(x, y, epochs=5, callbacks=[scripted, checkpoint], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["m-1-1.0.npz", "m-2-0.5.npz", "m-4-0.4.npz"]


def test_model_checkpoint_takes_keras_filepath_and_formats_it_with_the_epoch_and_the_logs(tmp_path):
    x, y = data()
    recorder = Recorder()
    checkpoint = ModelCheckpoint(filepath=str(tmp_path / "w-{epoch:02d}-{loss:.5f}-{accuracy:.3f}.npz"))
    history = model().fit(x, y, epochs=3, callbacks=[recorder, checkpoint], verbose=0)
    losses, accuracies = history.history["loss"], history.history["accuracy"]
    expected = [f"w-{epoch + 1:02d}-{losses[epoch]:.5f}-{accuracies[epoch]:.3f}.npz" for epoch in range(3)]
    assert expected[0].startswith("w-01-") and sorted(os.listdir(tmp_path)) == sorted(expected)
    for epoch, name in enumerate(expected):
        assert_weights_equal(xpann.load_model(tmp_path / name).get_weights(), recorder.weights[epoch])


def test_model_checkpoint_needs_exactly_one_path(tmp_path):
    with pytest.raises(ValueError, match="one file path"):
        ModelCheckpoint()
    with pytest.raises(ValueError, match="one file path"):
        ModelCheckpoint(tmp_path / "a.npz", filepath=tmp_path / "b.npz")


def test_model_checkpoint_mode_max_saves_only_when_the_monitor_rises(tmp_path):
    x, y = data()
    scores = [0.2, 0.5, 0.4, 0.7, 0.6, 0.7]  # rises at epochs 0, 1 and 3 only (the last ties)
    checkpoint = ModelCheckpoint(str(tmp_path / "m-{epoch}-{score:.1f}.npz"), monitor="score", mode="max",
                                 save_best_only=True)
    assert checkpoint.mode == "max" and ModelCheckpoint(tmp_path / "x.npz", monitor="score").mode == "min"
    model().fit(x, y, epochs=6, callbacks=[Script(scores, key="score"), checkpoint], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["m-1-0.2.npz", "m-2-0.5.npz", "m-4-0.7.npz"]
    assert checkpoint.best == 0.7


def test_model_checkpoint_mode_max_keeps_the_weights_of_the_highest_epoch(tmp_path):
    x, y = data()
    recorder = Recorder()
    path = tmp_path / "best.npz"
    checkpoint = ModelCheckpoint(path, monitor="score", mode="max", save_best_only=True)
    model().fit(x, y, epochs=5, callbacks=[Script([0.2, 0.9, 0.4, 0.7, 0.6], key="score"), recorder, checkpoint],
                verbose=0)
    assert os.listdir(tmp_path) == ["best.npz"]
    assert_weights_equal(xpann.load_model(path).get_weights(), recorder.weights[1])


# ----- ReduceLROnPlateau ----------------------------------------------------------------------


def test_reduce_lr_on_plateau_lowers_the_rate_on_a_long_plateau():
    x, y = data()
    recorder = Recorder()
    reducer = ReduceLROnPlateau(patience=2, factor=0.5, min_lr=0.003)
    net = model(learning_rate=0.01)
    net.fit(x, y, epochs=12, callbacks=[Script([1.0] * 12), reducer, recorder], verbose=0)
    rates = recorder.learning_rates
    assert rates[0] == 0.01 and rates[-1] == 0.003  # 0.01 -> 0.005 -> 0.003 (min_lr)
    assert sorted(set(rates), reverse=True) == [0.01, 0.005, 0.003]
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    assert net.optimizer.learning_rate == 0.003


def test_reduce_lr_on_plateau_acts_after_patience_epochs_without_improvement():
    x, y = data()
    recorder = Recorder()
    reducer = ReduceLROnPlateau(patience=2, factor=0.5)
    model(learning_rate=0.01).fit(x, y, epochs=6, callbacks=[Script([1.0] * 6), reducer, recorder], verbose=0)
    # Epoch 0 sets the best; epochs 1 and 2 do not improve, so the rate halves at the end of
    # epoch 2; the count restarts and it halves again at the end of epoch 4.
    assert recorder.learning_rates == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]


def test_reduce_lr_on_plateau_leaves_an_improving_run_alone():
    x, y = data()
    recorder = Recorder()
    model().fit(x, y, epochs=5, callbacks=[Script([5, 4, 3, 2, 1]), ReduceLROnPlateau(patience=0), recorder],
                verbose=0)
    assert recorder.learning_rates == [0.01] * 5


def test_the_reduced_rate_is_the_one_used_for_the_next_steps():
    x, y = data()
    net = model(learning_rate=0.01)
    net.fit(x, y, epochs=4, callbacks=[Script([1.0] * 4), ReduceLROnPlateau(patience=0, factor=0.1)], verbose=0)
    assert net.optimizer.learning_rate == pytest.approx(1e-5, rel=1e-12)  # cut at epochs 1, 2 and 3
    assert net.optimizer.current_learning_rate() == net.optimizer.learning_rate


def scripted_rates(losses, **options):
    """The learning rate at the end of each epoch when ReduceLROnPlateau(**options) sees ``losses``."""
    x, y = data()
    recorder = Recorder()
    monitor = options.get("monitor", "val_loss")
    model(learning_rate=0.01).fit(x, y, epochs=len(losses), verbose=0, callbacks=[
        Script(losses, key=monitor), ReduceLROnPlateau(**options), recorder])
    return recorder.learning_rates


def test_reduce_lr_on_plateau_waits_cooldown_epochs_after_each_reduction():
    # patience 1: a reduction at the first epoch without improvement (1); then 2 cooldown epochs
    # (2, 3) end before the next can come, at epoch 3; and so on (5, 7).
    rates = scripted_rates([1.0] * 8, patience=1, factor=0.5, cooldown=2)
    assert rates == [0.01, 0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.00125, 0.000625]
    assert scripted_rates([1.0] * 5, patience=1, factor=0.5, cooldown=0) == [
        0.01, 0.005, 0.0025, 0.00125, 0.000625]


def test_reduce_lr_on_plateau_cooldown_restarts_the_patience_count():
    # patience 2, cooldown 2: reductions at epochs 2 and 5, not 4 as without the cooldown: each
    # cooldown epoch (3, 4) sets the wait back to 0 before counting its own epoch, so only
    # epochs 4 and 5 make the next two.
    assert scripted_rates([1.0] * 7, patience=2, factor=0.5, cooldown=2) == [
        0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025]


def test_reduce_lr_on_plateau_counts_only_improvements_larger_than_min_delta():
    # min_delta 0.1 against the best so far (1.0, then 0.85, 0.7): 0.95, 0.8 and 0.65 fall short
    # and each reduces (patience 1); 0.85, 0.7 and 0.5 improve enough.
    losses = [1.0, 0.95, 0.85, 0.8, 0.7, 0.65, 0.5]
    assert scripted_rates(losses, patience=1, factor=0.5, min_delta=0.1) == [
        0.01, 0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.00125]
    assert scripted_rates(losses, patience=1, factor=0.5, min_delta=0.0) == [0.01] * 7
    accuracy = [0.5, 0.55, 0.65, 0.7, 0.8]  # mode max: +0.05 is short of min_delta 0.1, +0.15 is not
    assert scripted_rates(accuracy, monitor="val_accuracy", patience=1, factor=0.5, min_delta=0.1) == [
        0.01, 0.005, 0.005, 0.0025, 0.0025]


def test_reduce_lr_on_plateau_default_min_delta_is_1e_4():
    # steps of 3e-5 are a plateau for the default min_delta (1e-4): the wait reaches patience 2 at
    # epoch 2; 0.99988 is 1.2e-4 below the best (1.0) and counts.
    losses = [1.0, 0.99997, 0.99994, 0.99991, 0.99988, 0.99985]
    assert scripted_rates(losses, patience=2, factor=0.5) == [0.01, 0.01, 0.005, 0.005, 0.005, 0.005]


def test_reduce_lr_on_plateau_rejects_bad_arguments():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match="patience"):
        ReduceLROnPlateau(patience=-2)


# ----- TerminateOnNaN -------------------------------------------------------------------------


def exploding_run(callbacks=(), epochs=10):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 4)) * 1000.0  # unscaled features
    y = x @ numpy.array([1.0, 2.0, 3.0, 4.0]) * 100.0
    net = xpann.Sequential([Dense(16, activation="relu"), Dense(1)], input_dim=4, seed=0)
    net.compile(xpann.optimizers.SGD(learning_rate=10.0), "mse")
    start = net.get_weights()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = net.fit(x, y, epochs=epochs, batch_size=16, callbacks=list(callbacks), verbose=0)
    health = [w for w in caught if issubclass(w.category, TrainingHealthWarning)]
    return net, history, health, start, x


def test_an_exploding_run_stops_with_a_warning_and_finite_weights():
    net, history, health, start, x = exploding_run()
    assert len(history.epoch) < 10
    assert not math.isfinite(history.history["loss"][-1])
    messages = [str(w.message) for w in health]
    assert any("exploding" in message and "learning rate" in message for message in messages), messages
    assert all(numpy.isfinite(w).all() for w in net.get_weights())
    assert numpy.isfinite(net.predict(x)).all()
    if len(history.epoch) == 1:
        assert_weights_equal(net.get_weights(), start)  # the weights from before the bad epoch


def test_terminate_on_nan_given_explicitly_is_not_doubled():
    terminate = TerminateOnNaN()
    _, history, health, _, _ = exploding_run(callbacks=[terminate])
    messages = [str(w.message) for w in health]
    assert messages and len(messages) == len(set(messages))
    assert terminate.stopped_epoch == history.epoch[-1]


def test_the_health_warning_is_a_user_warning():
    assert issubclass(TrainingHealthWarning, UserWarning)
    assert xpann.errors.TrainingHealthWarning is TrainingHealthWarning


def test_a_batch_callback_can_stop_training_mid_epoch():
    class StopAtThirdBatch(xpann.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.batches = batch + 1
            if batch == 2:
                self.model.stop_training = True

    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = x.sum(axis=1)
    model = xpann.Sequential([Dense(4), Dense(1)], seed=0)
    model.compile("sgd", "mse")
    stopper = StopAtThirdBatch()
    history = model.fit(x, y, epochs=3, batch_size=10, callbacks=[stopper], verbose=0)
    assert stopper.batches == 3
    assert len(history.history["loss"]) == 1 and math.isfinite(history.history["loss"][0])
