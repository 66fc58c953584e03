"""The fast training step: reused buffers are safe, the in-layer ReLU and linear paths match the
activation objects, the fused loss without probabilities matches the full path, and the BLAS
thread plan stays within what the process allows. Speed itself is never asserted."""

import numpy
import pytest

import xpann
from conftest import TOLERANCES, assert_backends_agree
from xpann import activations, layers
from xpann.backend import _threads


def mlp(backend_name="numpy", dtype="float32", optimizer="sgd", seed=0, features=6, hidden=(8, 7), classes=3):
    model = xpann.Sequential(
        [*(layers.Dense(width, activation="relu") for width in hidden), layers.Dense(classes, activation="softmax")],
        input_dim=features, seed=seed, backend=backend_name, dtype=dtype)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def data(samples=23, features=6, classes=3, seed=1):
    rng = numpy.random.default_rng(seed)
    return rng.standard_normal((samples, features)).astype("float32"), rng.integers(0, classes, samples)


def test_predict_and_evaluate_results_do_not_change_when_training_goes_on():
    model = mlp()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)
    predicted = model.predict(x)
    kept = predicted.copy()
    evaluated = model.evaluate(x, y)
    model.fit(x, y, epochs=2, batch_size=5, verbose=0)
    model.predict(x[:7])
    numpy.testing.assert_array_equal(predicted, kept)
    assert isinstance(evaluated["loss"], float)
    assert not numpy.array_equal(model.predict(x), kept)  # the weights did move


def test_fit_over_uneven_batches_matches_one_train_on_batch_per_batch():
    x, y = data(samples=23)
    fitted, stepped = mlp(optimizer="adam"), mlp(optimizer="adam")
    fitted.fit(x, y, epochs=2, batch_size=5, shuffle=False, verbose=0)
    for _ in range(2):
        for start in range(0, 23, 5):  # four batches of 5, then one of 3
            stepped.train_on_batch(x[start:start + 5], y[start:start + 5])
    for got, want in zip(fitted.get_weights(), stepped.get_weights()):
        numpy.testing.assert_array_equal(got, want)


def test_many_batch_sizes_in_turn_give_the_same_steps_as_fresh_models():
    x, y = data(samples=40)
    reused = mlp()
    for size in (8, 3, 8, 5, 3, 1, 8):  # more sizes than the layers keep buffers for
        reference = mlp()
        reference.set_weights(reused.get_weights())
        loss = reused.train_on_batch(x[:size], y[:size])
        expected = reference.train_on_batch(x[:size], y[:size])
        assert loss == expected
        for got, want in zip(reused.get_weights(), reference.get_weights()):
            numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["relu", "linear"])
def test_the_layer_paths_for_relu_and_linear_match_the_activation_objects(backend, name, dtype):
    model = xpann.Sequential([layers.Dense(5, activation=name, bias_initializer="uniform")], input_dim=4, seed=3,
                             dtype=dtype, backend=backend.name)
    node = model.plan.nodes[0]
    node.need_input_grad = True
    dense = node.layer
    rng = numpy.random.default_rng(2)
    x = backend.asarray(rng.standard_normal((9, 4)), dtype=dtype)
    dy = backend.asarray(rng.standard_normal((9, 5)), dtype=dtype)
    activation = activations.get(name)
    for training in (True, False):
        z = dense.forward(node, x, training, activate=False)[0].copy()
        y = backend.to_numpy(dense.forward(node, x, training)[0]).copy()
        numpy.testing.assert_array_equal(y, backend.to_numpy(activation.forward(backend, z)))
    z = dense.forward(node, x, True, activate=False)[0].copy()
    y, backprop = dense.forward(node, x, True)
    expected_dz = backend.to_numpy(activation.backward(backend, dy, z, y))
    dx = backend.to_numpy(backprop(dy)).copy()
    kernel_grad = backend.to_numpy(node.grads["kernel"]).copy()
    bias_grad = backend.to_numpy(node.grads["bias"]).copy()
    host_x, kernel = backend.to_numpy(x), backend.to_numpy(node.params["kernel"])
    limits = TOLERANCES[dtype]
    numpy.testing.assert_allclose(dx, expected_dz @ kernel.T, **limits)
    numpy.testing.assert_allclose(kernel_grad, host_x.T @ expected_dz, **limits)
    numpy.testing.assert_allclose(bias_grad, expected_dz.sum(axis=0), **limits)


def test_the_relu_gradient_is_zero_where_the_unit_is_off_and_passes_through_elsewhere(backend):
    model = xpann.Sequential([layers.Dense(3, activation="relu")], input_dim=3, seed=0, backend=backend.name)
    node = model.plan.nodes[0]
    node.need_input_grad = True
    model.set_weights([numpy.eye(3, dtype="float32"), numpy.zeros(3, dtype="float32")])
    x = backend.asarray(numpy.array([[1.0, 0.0, -2.0], [-1.0, 3.0, 0.0]], dtype="float32"))
    _, backprop = node.layer.forward(node, x, True)
    dy = backend.asarray(numpy.full((2, 3), 7.0, dtype="float32"))
    dx = backend.to_numpy(backprop(dy))
    numpy.testing.assert_array_equal(dx, [[7.0, 0.0, 0.0], [0.0, 7.0, 0.0]])


def test_a_training_step_without_probabilities_matches_the_full_step():
    x, y = data(samples=10)
    full, lean = mlp(), mlp()
    xd, yd = full._prepare(x, y)
    loss_full, output = full._train_step(xd, yd, need_output=True)
    loss_lean, nothing = lean._train_step(xd, yd, need_output=False)
    assert nothing is None
    assert float(loss_full) == float(loss_lean)
    numpy.testing.assert_array_equal(full.parameters.data, lean.parameters.data)
    numpy.testing.assert_array_equal(lean.plan.output_of(len(lean.layers) - 1), output)  # computed when asked for


def test_the_gradient_hook_sees_this_steps_outputs_and_logits():
    seen = []

    class Probe(xpann.callbacks.Callback):
        def on_train_batch_gradients(self, batch):
            plan = self.model.plan
            hidden, second = plan.output_of(0), plan.output_of(1)
            kernel, bias = plan.nodes[1].params["kernel"], plan.nodes[1].params["bias"]
            probabilities = plan.output_of(2)
            shifted = numpy.exp(plan.logits - plan.logits.max(axis=1, keepdims=True))
            seen.append(numpy.allclose(second, numpy.maximum(hidden @ kernel + bias, 0), rtol=1e-5, atol=1e-6)
                        and numpy.allclose(probabilities, shifted / shifted.sum(axis=1, keepdims=True), rtol=1e-5))

    x, y = data()
    mlp().fit(x, y, epochs=2, batch_size=4, callbacks=[Probe()], verbose=0)
    assert seen and all(seen)


def test_fit_agrees_across_backends():
    x, y = data(samples=30)

    def run(backend):
        model = mlp(backend.name, optimizer="adam")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return [backend.asarray(w) for w in model.get_weights()]

    assert_backends_agree(run, rtol=1e-4, atol=1e-5)


# ----- BLAS threads ------------------------------------------------------------------------------


def blas_libraries():
    libraries = _threads.BLAS_THREADS.libraries()
    if not libraries:
        pytest.skip("threadpoolctl finds no BLAS library to control here")
    return libraries


def test_the_thread_plan_never_exceeds_what_the_process_allows_and_restores_it(monkeypatch):
    monkeypatch.delenv(_threads.ENVIRONMENT_VARIABLE, raising=False)
    libraries = blas_libraries()
    before = [lib.num_threads for lib in libraries]
    allowed = min(before)
    small = [(64, 128, 128)]
    large = [(256, 512, 784)]
    with _threads.BLAS_THREADS.plan(small) as plan:
        assert plan.threads == 1
        assert max(lib.num_threads for lib in libraries) == 1
    with _threads.BLAS_THREADS.plan(large) as plan:
        for _ in range(3):
            plan.refresh()
            assert 1 <= plan.threads <= allowed
            assert max(lib.num_threads for lib in libraries) <= allowed
    assert [lib.num_threads for lib in libraries] == before


def test_the_environment_variable_forces_a_count_and_rejects_nonsense(monkeypatch):
    libraries = blas_libraries()
    before = [lib.num_threads for lib in libraries]
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, "1")
    with _threads.BLAS_THREADS.plan([(4096, 4096, 4096)]) as plan:
        assert plan.threads == 1
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, "many")
    with pytest.raises(ValueError, match=_threads.ENVIRONMENT_VARIABLE):
        _threads.BLAS_THREADS.plan([(8, 8, 8)])
    assert [lib.num_threads for lib in libraries] == before


def test_fit_runs_small_models_on_one_thread_and_restores_the_count(monkeypatch):
    monkeypatch.delenv(_threads.ENVIRONMENT_VARIABLE, raising=False)
    libraries = blas_libraries()
    before = [lib.num_threads for lib in libraries]
    during = []

    class Watch(xpann.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            during.append(max(lib.num_threads for lib in libraries))

    x, y = data()
    mlp().fit(x, y, epochs=1, batch_size=8, callbacks=[Watch()], verbose=0)
    assert during and set(during) == {1}
    assert [lib.num_threads for lib in libraries] == before


def test_the_cpu_load_sample_is_a_count_of_cores_or_unknown():
    load = _threads.CpuLoad()
    first = load.free_cores()
    assert first is None or isinstance(first, int)
    others = load.others(window=0.0)
    assert others is None or others >= 0.0


@pytest.mark.parametrize("hidden_activation", ["relu", "linear"])
def test_biases_folded_into_the_products_train_like_separate_biases(hidden_activation):
    """Dense after a ReLU or linear Dense adds its bias inside the product (a ones column); a
    Dropout(0) in between breaks that link, so both paths must give the same training."""

    def build(separate):
        stack = []
        for width in (8, 7):
            stack.append(layers.Dense(width, activation=hidden_activation, bias_initializer="uniform"))
            if separate:
                stack.append(layers.Dropout(0.0))
        stack.append(layers.Dense(3, activation="softmax", bias_initializer="uniform"))
        model = xpann.Sequential(stack, input_dim=6, seed=4, dtype="float64", backend="numpy")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    folded, separate = build(False), build(True)
    assert [node.ones_in is not None for node in folded.plan.nodes] == [False, True, True]
    assert all(node.ones_in is None for node in separate.plan.nodes)
    x, y = data(samples=21)
    loss_folded, grads_folded = folded.compute_gradients(x, y)
    loss_separate, grads_separate = separate.compute_gradients(x, y)
    assert loss_folded == pytest.approx(loss_separate, rel=1e-12)
    for got, want in zip(grads_folded, grads_separate):
        numpy.testing.assert_allclose(got, want, **TOLERANCES["float64"])
    folded.fit(x, y, epochs=3, batch_size=4, verbose=0)
    separate.fit(x, y, epochs=3, batch_size=4, verbose=0)
    for got, want in zip(folded.get_weights(), separate.get_weights()):
        numpy.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)
    numpy.testing.assert_allclose(folded.predict(x), separate.predict(x), rtol=1e-9, atol=1e-11)


class _FakeLibrary:
    def __init__(self, threads):
        self.num_threads = threads

    def set_num_threads(self, threads):
        self.num_threads = threads


class _FakeController:
    def __init__(self, threads):
        self._libraries = [_FakeLibrary(threads)]

    def libraries(self):
        return self._libraries


@pytest.mark.parametrize("policy, expected", [("auto", 2), ("adaptive", 1)])
def test_only_the_adaptive_policy_follows_the_load_of_other_processes(monkeypatch, policy, expected):
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, policy)
    monkeypatch.setattr(_threads.CPU_LOAD, "free_cores", lambda: 1)  # another process holds a core
    controller = _FakeController(2)
    with _threads.ThreadPlan(controller, [(4096, 4096, 4096)]) as plan:
        plan.refresh()
        assert plan.threads == expected
        assert controller.libraries()[0].num_threads == expected
    assert controller.libraries()[0].num_threads == 2
