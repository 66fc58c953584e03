"""Gradient health: GradientMonitor records, the warnings fit gives by default, and gradient_check.

Small deterministic cases of the classic failures: a deep sigmoid net whose first layer gets
orders of magnitude less gradient than its last, ReLU + He that keeps them together, weights far
too large that blow the loss up, units killed by a very negative bias, tanh saturated by a large
initialisation."""

import ast
import json
import math
import pathlib
import warnings

import numpy
import pytest

import xpann
from xpann import diagnostics
from xpann.activations import Tanh
from xpann.callbacks import GradientMonitor, TerminateOnNaN
from xpann.errors import TrainingHealthWarning
from xpann.initializers import Constant, RandomNormal
from xpann.layers import Dense, Dropout


def data(n=128, features=8, seed=0):
    x, y = xpann.datasets.make_classification(n_samples=n, n_features=features, seed=seed, dtype="float64")
    return x, y


def deep(activation, init, depth=10, width=16, inputs=8, lr=0.01, seed=0, **options):
    layers = [Dense(width, activation=activation, kernel_initializer=init, **options) for _ in range(depth)]
    layers.append(Dense(2, activation="softmax", kernel_initializer=init))
    model = xpann.Sequential(layers, input_dim=inputs, seed=seed)
    model.compile(xpann.optimizers.SGD(learning_rate=lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit(model, x, y, callbacks=(), epochs=2, batch_size=32):
    """Fit and return (history, the TrainingHealthWarnings raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=list(callbacks))
    return history, [w for w in caught if issubclass(w.category, TrainingHealthWarning)]


def grad_norms(record):
    return [layer["grad_norm"] for layer in record["layers"]]


# ----- the classic failures ---------------------------------------------------------------------


def test_deep_sigmoid_first_layer_gradient_is_orders_below_the_last_and_the_monitor_says_so(backend):
    x, y = data()
    monitor = GradientMonitor()
    _, health = fit(deep("sigmoid", "glorot_uniform"), x, y, [monitor])
    first, *_, last = grad_norms(monitor.history[0])
    assert first < 1e-4 * last
    assert [kind for kind, *_ in monitor.problems] == ["vanishing"]
    assert monitor.problems[0][1] == "dense_1"
    assert len(health) == 1
    message = str(health[0].message)
    assert "anishing" in message and "dense_1" in message and "dense_11" in message
    assert "he_normal" in message and "ReLU" in message
    assert "\n" not in message


def test_relu_he_keeps_the_layers_gradients_within_one_order(backend):
    x, y = data()
    monitor = GradientMonitor()
    _, health = fit(deep("relu", "he_normal"), x, y, [monitor])
    for record in monitor.history:
        norms = grad_norms(record)
        assert max(norms) < 10 * min(norms)
    assert monitor.problems == []
    assert health == []


def test_weights_far_too_large_blow_the_loss_up_and_terminate_on_nan_stops_with_the_exploding_message():
    x, y = data()
    model = deep("relu", RandomNormal(stddev=30.0), depth=6)
    before = model.get_weights()
    history, health = fit(model, x, y, epochs=5)
    assert len(history.history["loss"]) == 1
    assert not math.isfinite(history.history["loss"][0])
    assert len(health) == 1  # TerminateOnNaN says it; the health check does not repeat it
    assert "exploding gradients" in str(health[0].message)
    for kept, start in zip(model.get_weights(), before):
        numpy.testing.assert_array_equal(kept, start)


def test_a_very_negative_bias_kills_every_unit_of_the_layer(backend):
    x, y = data()
    layers = [Dense(16, activation="relu", kernel_initializer="he_normal", bias_initializer=Constant(-100.0),
                    name="killed"),
              Dense(16, activation="leaky_relu", kernel_initializer="he_normal"),
              Dense(2, activation="softmax")]
    model = xpann.Sequential(layers, input_dim=8, seed=0)
    model.compile(xpann.optimizers.SGD(learning_rate=0.01), "sparse_categorical_crossentropy")
    monitor = GradientMonitor()
    _, health = fit(model, x, y, [monitor])
    for record in monitor.history:
        killed, second, output = record["layers"]
        assert killed["dead_fraction"] == 1.0
        assert killed["grad_norm"] == 0.0
        assert second["dead_fraction"] is not None
        assert output["dead_fraction"] is None and output["saturated_fraction"] is None
    kinds = {(kind, layer) for kind, layer, _ in monitor.problems}
    assert ("dead", "killed") in kinds
    assert not any(kind == "vanishing" for kind, _ in kinds)  # dead units explain it better
    assert any("Dead units" in str(w.message) and "'killed'" in str(w.message) for w in health)


def test_a_healthy_relu_layer_has_few_dead_units():
    x, y = data()
    monitor = GradientMonitor()
    fit(deep("relu", "he_normal", depth=2, width=32), x, y, [monitor])
    assert all(layer["dead_fraction"] < 0.5 for layer in monitor.history[-1]["layers"][:-1])


def test_tanh_with_a_large_initialisation_saturates():
    x, y = data()
    model = deep("tanh", RandomNormal(stddev=3.0), depth=3, width=32)
    monitor = GradientMonitor()
    _, health = fit(model, x, y, [monitor])
    hidden = monitor.history[0]["layers"][:-1]
    assert all(layer["saturated_fraction"] > 0.5 for layer in hidden[1:])
    assert all(layer["dead_fraction"] is None for layer in hidden)
    assert any("Saturated units" in str(w.message) for w in health)
    healthy = GradientMonitor()
    fit(deep("tanh", "glorot_uniform", depth=3, width=32), x, y, [healthy])
    assert all(layer["saturated_fraction"] < 0.1 for layer in healthy.history[0]["layers"][:-1])


def test_an_activation_layer_after_a_linear_dense_is_what_counts():
    x, y = data()
    model = xpann.Sequential([Dense(16, bias_initializer=Constant(-100.0)), Dropout(0.0),
                              xpann.layers.Activation("relu"), Dense(2, activation="softmax")],
                             input_dim=8, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    monitor = GradientMonitor(warn=False)
    fit(model, x, y, [monitor], epochs=1)
    first = monitor.history[0]["layers"][0]
    assert first["name"] == "dense_1" and first["activation"] == "relu" and first["dead_fraction"] == 1.0


# ----- on by default in fit ----------------------------------------------------------------------


def test_a_plain_fit_warns_about_vanishing_gradients_once():
    x, y = data()
    model = deep("sigmoid", "glorot_uniform")
    _, first = fit(model, x, y, epochs=3)
    _, again = fit(model, x, y, epochs=3)
    assert len(first) == 1 and "Vanishing gradients" in str(first[0].message)
    assert again == []  # once per model, not every epoch or every fit
    assert first[0].filename == __file__  # points at the user's fit call


def test_a_plain_healthy_fit_gives_no_health_warning():
    x, y = data()
    model = xpann.Sequential([Dense(32, activation="relu", kernel_initializer="he_normal"), Dropout(0.1),
                              Dense(2, activation="softmax")], input_dim=8, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    _, health = fit(model, x, y, epochs=10, batch_size=8)
    assert health == []


def test_fit_adds_the_light_check_only_when_no_monitor_is_given(monkeypatch):
    made = []
    original = GradientMonitor.health_check.__func__

    def spy(cls):
        made.append(original(cls))
        return made[-1]

    monkeypatch.setattr(GradientMonitor, "health_check", classmethod(spy))
    x, y = data()
    model = deep("relu", "he_normal", depth=2)
    fit(model, x, y, epochs=2)
    assert len(made) == 1 and made[0].sample and len(made[0].history) == 2
    fit(model, x, y, [GradientMonitor(warn=False)], epochs=1)
    assert len(made) == 1


def test_the_light_check_measures_the_epochs_first_batch_exactly():
    x, y = data(n=256)
    light, steps = GradientMonitor(sample=True), GradientMonitor(per="step", every=1, warn=False)
    fit(deep("sigmoid", "glorot_uniform", seed=1), x, y, [light], epochs=1)
    fit(deep("sigmoid", "glorot_uniform", seed=1), x, y, [steps], epochs=1)
    light_norms, first_step = grad_norms(light.history[0]), grad_norms(steps.history[0])
    assert len(light_norms) == len(first_step) == 11
    numpy.testing.assert_allclose(light_norms, first_step, rtol=1e-12)  # the same batch, the same numbers


def test_the_monitor_reads_the_device_once_per_record(monkeypatch):
    x, y = data(n=96)
    counts = []
    for callbacks in ([TerminateOnNaN()], [GradientMonitor(warn=False)]):  # the first: no monitor at all
        model = deep("relu", "he_normal", depth=3)
        reads = []
        original = model.backend.to_numpy
        monkeypatch.setattr(model.backend, "to_numpy", lambda value: reads.append(1) or original(value))
        with monkeypatch.context() as patch:
            patch.setattr(GradientMonitor, "health_check", classmethod(lambda cls: TerminateOnNaN()))
            fit(model, x, y, callbacks, epochs=4, batch_size=8)  # 12 steps an epoch
        monkeypatch.undo()
        counts.append(len(reads))
    assert counts[1] - counts[0] == 4  # one read per record, none per step


# ----- what is recorded --------------------------------------------------------------------------


def test_records_are_plain_host_numbers_and_save_as_json(tmp_path):
    x, y = data()
    monitor = GradientMonitor()
    fit(deep("relu", "he_normal", depth=2), x, y, [monitor], epochs=3)
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    assert [record["step"] for record in monitor.history] == [4, 8, 12]
    for record in monitor.history:
        assert isinstance(record["loss"], float)
        assert [layer["name"] for layer in record["layers"]] == ["dense_1", "dense_2", "dense_3"]
        for layer in record["layers"]:
            assert set(layer) >= {"name", "grad_norm", "weight_norm", "update_ratio", "dead_fraction",
                                  "saturated_fraction"}
            for key, value in layer.items():
                assert value is None or type(value) in (float, str), (key, type(value))
            assert math.isclose(layer["grad_norm"] ** 2, layer["kernel_grad_norm"] ** 2
                                + layer["bias_grad_norm"] ** 2, rel_tol=1e-9)
    path = tmp_path / "records.json"
    monitor.save(path)
    loaded = json.loads(path.read_text())
    assert loaded[0]["layers"][0]["grad_norm"] == pytest.approx(monitor.history[0]["layers"][0]["grad_norm"])
    assert json.loads(monitor.to_json()) == loaded


def test_non_finite_numbers_become_null_in_json():
    text = diagnostics.records_to_json([{"loss": float("nan"), "layers": [{"grad_norm": float("inf")}]}])
    assert json.loads(text) == [{"loss": None, "layers": [{"grad_norm": None}]}]


def test_the_update_ratio_is_that_of_the_first_step():
    x, y = data(n=64)
    model = deep("tanh", "glorot_uniform", depth=2, lr=0.1)
    start = model.get_weights()
    _, gradients = model.compute_gradients(x, y)
    monitor = GradientMonitor(warn=False)
    model.fit(x, y, epochs=1, batch_size=None, shuffle=False, verbose=0, callbacks=[monitor])
    for position, layer in enumerate(monitor.history[0]["layers"]):
        weights = start[2 * position:2 * position + 2]
        grads = gradients[2 * position:2 * position + 2]
        norm = math.sqrt(sum(float((w ** 2).sum()) for w in weights))
        step = 0.1 * math.sqrt(sum(float((g ** 2).sum()) for g in grads))
        assert layer["update_ratio"] == pytest.approx(step / norm, rel=1e-4)
        assert layer["grad_norm"] == pytest.approx(step / 0.1, rel=1e-4)


def test_every_n_epochs_and_every_n_steps():
    x, y = data(n=64)
    by_epoch = GradientMonitor(every=2, warn=False)
    by_step = GradientMonitor(every=3, per="step", warn=False)
    fit(deep("relu", "he_normal", depth=2), x, y, [by_epoch, by_step], epochs=5, batch_size=16)  # 20 steps
    assert [record["epoch"] for record in by_epoch.history] == [0, 2, 4]
    assert [record["step"] for record in by_step.history] == [3, 6, 9, 12, 15, 18]
    assert [record["epoch"] for record in by_step.history] == [0, 1, 2, 2, 3, 4]
    assert all(record["loss"] is None for record in by_step.history)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(every=0)
    with pytest.raises(ValueError, match="per"):
        GradientMonitor(per="batch")


# ----- the rules ----------------------------------------------------------------------------------


def record(norms, epoch=0, dead=None, saturated=None, activation="relu"):
    layers = [{"name": f"dense_{i + 1}", "activation": activation, "grad_norm": norm,
               "dead_fraction": (dead or {}).get(i), "saturated_fraction": (saturated or {}).get(i)}
              for i, norm in enumerate(norms)]
    finite = all(math.isfinite(n) for n in norms)
    return {"epoch": epoch, "step": 10, "global_grad_norm": math.sqrt(sum(n * n for n in norms)) if finite
            else float("nan"), "layers": layers}


def kinds(problems):
    return [(kind, layer) for kind, layer, _ in problems]


def test_rules():
    assert kinds(diagnostics.find_problems(record([0.5, 0.4, 0.3]))) == []
    assert kinds(diagnostics.find_problems(record([1e-5, 0.1, 0.3]))) == [("vanishing", "dense_1")]
    assert kinds(diagnostics.find_problems(record([2e3, 3e3, 1e3]), baseline_norm=1.0)) == [("exploding", "dense_2")]
    assert kinds(diagnostics.find_problems(record([2.0, 3.0, 1.0]), baseline_norm=1.0)) == []
    assert kinds(diagnostics.find_problems(record([1.0, float("inf"), 1.0]))) == [("exploding", "dense_2")]
    assert kinds(diagnostics.find_problems(record([0.5, 0.4, 0.3], dead={1: 0.75}))) == [("dead", "dense_2")]
    assert kinds(diagnostics.find_problems(record([0.5, 0.4, 0.3], dead={1: 0.5}))) == []
    saturated = record([0.5, 0.4, 0.3], saturated={0: 0.9, 2: 0.9}, activation="sigmoid")
    assert kinds(diagnostics.find_problems(saturated)) == [("saturated", "dense_1")]  # not the output layer
    for kind, _, message in diagnostics.find_problems(record([1e-9, 1.0], dead={0: 0.0})):
        assert kind in message.lower() and "\n" not in message


def test_exploding_rise_is_measured_from_the_first_record():
    class Model:
        pass

    rules = diagnostics.HealthRules(Model())
    assert rules.check(record([0.1, 0.1]), warn=False) == []
    assert kinds(rules.check(record([10.0, 10.0]), warn=False)) == []
    assert kinds(rules.check(record([500.0, 100.0]), warn=False)) == [("exploding", "dense_1")]
    assert rules.check(record([500.0, 100.0]), loss=float("nan"), warn=False) == []  # TerminateOnNaN's job


def test_the_warning_class_is_re_exported_and_the_import_graph_is_acyclic():
    assert diagnostics.TrainingHealthWarning is TrainingHealthWarning
    assert issubclass(TrainingHealthWarning, UserWarning)
    source = pathlib.Path(diagnostics.__file__).read_text(encoding="utf-8")
    imported = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
                for alias in node.names} | {node.module for node in ast.walk(ast.parse(source))
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert "callbacks" not in imported  # callbacks imports diagnostics, not the reverse


# ----- gradient_check ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softplus"])
def test_gradient_check_finds_tiny_errors_for_a_correct_model(activation):
    x, y = data(n=16, features=5)
    # Wide enough that no sample has every unit of a ReLU layer off: the next layer's pre-activation
    # would then sit exactly on the kink (z = bias = 0), where finite differences see slope 1/2.
    model = xpann.Sequential([Dense(16, activation=activation), Dropout(0.5), Dense(8, activation=activation),
                              Dense(2, activation="softmax")], input_dim=5, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    errors = diagnostics.gradient_check(model, x, y)
    assert list(errors) == ["dense_1", "dense_3", "dense_4"]
    assert max(errors.values()) < 1e-4
    for kept, start in zip(model.get_weights(), before):
        numpy.testing.assert_array_equal(kept, start)
    assert model.dtype == "float32"


def test_gradient_check_on_regression_and_binary_outputs():
    x, y = data(n=16, features=5)
    for loss, activation, target in (("mse", None, x[:, :1] * 2.0), ("binary_crossentropy", "sigmoid", y[:, None])):
        model = xpann.Sequential([Dense(5, activation="tanh"), Dense(1, activation=activation)], input_dim=5, seed=1)
        model.compile("sgd", loss)
        assert max(diagnostics.gradient_check(model, x, target).values()) < 1e-4


class WrongTanh(Tanh):
    """tanh whose derivative is wrong: 1 - y instead of 1 - y^2."""

    def backward(self, backend, dy, z, y):
        return dy * (1 - y)


def test_gradient_check_reports_a_large_error_for_a_wrong_gradient():
    x, y = data(n=16, features=5)
    model = xpann.Sequential([Dense(6, activation=WrongTanh(), name="wrong"), Dense(2, activation="softmax")],
                             input_dim=5, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    errors = diagnostics.gradient_check(model, x, y)
    assert errors["wrong"] > 0.1
    assert errors["dense_2"] < 1e-4


def test_gradient_check_needs_a_compiled_model():
    model = xpann.Sequential([Dense(2)], input_dim=3)
    with pytest.raises(ValueError, match="compile"):
        diagnostics.gradient_check(model, numpy.zeros((2, 3)), numpy.zeros((2, 2)))
