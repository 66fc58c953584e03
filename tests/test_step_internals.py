"""The fast training step: reused buffers are safe, the in-layer ReLU and linear paths match the
activation objects, the fused loss without probabilities matches the full path, and the BLAS
thread plan stays within what the process allows. Speed itself is never asserted."""

import json
import os
import subprocess
import sys
import time

import numpy
import pytest

import reference
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
    # float32: the loss of the probabilities predict gave, in float64 NumPy, to float32's precision
    assert type(evaluated["loss"]) is float
    assert evaluated["loss"] == pytest.approx(
        reference.sparse_categorical_crossentropy(y, kept.astype(numpy.float64)), rel=1e-5)
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
# conftest pins every test worker's BLAS to one thread, so a test that read the real pool here
# could not tell one policy from another. The policy is tested on a fake pool of a known size
# (the core budget), with the product sizes and XPANN_BLAS_THREADS given; the real pool once, in a
# fresh interpreter where OPENBLAS_NUM_THREADS is unset.


class _FakeLibrary:
    def __init__(self, threads):
        self.num_threads = threads
        self.calls = []

    def set_num_threads(self, threads):
        self.calls.append(threads)
        self.num_threads = threads


class _FakeController:
    def __init__(self, *threads):
        self._libraries = [_FakeLibrary(count) for count in threads]

    def libraries(self):
        return self._libraries


def chosen(monkeypatch, allowed, products, setting=None, free=None, spare=64):
    """The thread count ThreadPlan sets, inside ``with``, for a pool of ``allowed`` threads, the
    (m, n, k) ``products`` and XPANN_BLAS_THREADS=``setting`` (unset: None); ``free`` cores for
    the adaptive policy, ``spare`` cores (all but one) for auto. Checks that the pool has it during the block and its count back after."""
    if setting is None:
        monkeypatch.delenv(_threads.ENVIRONMENT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, setting)
    monkeypatch.setattr(_threads.CPU_LOAD, "free_cores", lambda: free)
    monkeypatch.setattr(_threads, "_spare_cores", lambda: spare)
    controller = _FakeController(allowed)
    library = controller.libraries()[0]
    with _threads.ThreadPlan(controller, products) as plan:
        plan.refresh()
        assert library.num_threads == plan.threads
        threads = plan.threads
    assert library.num_threads == allowed
    return threads


SMALL = [(64, 128, 128), (64, 128, 3)]  # m*n*k at most 2**20
EDGE_BELOW = [(127, 128, 128)]  # 2**21 - 2**14
EDGE = [(128, 128, 128)]  # 2**21: the smallest product that gets the whole pool
LARGE = [(256, 512, 784), (256, 784, 512)]


@pytest.mark.parametrize("allowed", [2, 3, 8])
def test_auto_runs_products_below_2_to_the_21_on_one_thread_and_larger_on_the_whole_pool(monkeypatch, allowed):
    assert chosen(monkeypatch, allowed, SMALL) == 1
    assert chosen(monkeypatch, allowed, EDGE_BELOW) == 1
    assert chosen(monkeypatch, allowed, EDGE) == allowed
    assert chosen(monkeypatch, allowed, LARGE) == allowed
    assert chosen(monkeypatch, allowed, LARGE, setting="auto") == allowed
    assert chosen(monkeypatch, allowed, LARGE, setting=" Auto ") == allowed
    assert chosen(monkeypatch, allowed, LARGE, setting="") == allowed
    assert chosen(monkeypatch, allowed, []) == 1
    # the largest product decides, not their sum (ten of 2**20 are 10 * 2**20)
    assert chosen(monkeypatch, allowed, SMALL * 10) == 1
    assert chosen(monkeypatch, allowed, SMALL * 10 + EDGE) == allowed


@pytest.mark.parametrize("spare, allowed, threads", [(1, 2, 1), (1, 8, 1), (3, 8, 3), (15, 8, 8), (7, 2, 2)])
def test_auto_leaves_one_core_to_the_rest_of_the_machine(monkeypatch, spare, allowed, threads):
    assert chosen(monkeypatch, allowed, LARGE, spare=spare) == threads
    assert chosen(monkeypatch, allowed, SMALL, spare=spare) == 1
    assert chosen(monkeypatch, allowed, LARGE, setting="2", spare=spare) == 2  # a number still forces it


def test_a_forced_count_never_exceeds_the_pool_the_process_allows(monkeypatch):
    assert chosen(monkeypatch, 2, LARGE, setting="4") == 2
    assert chosen(monkeypatch, 3, SMALL, setting="8") == 3


def test_spare_cores_are_the_usable_cores_less_one(monkeypatch):
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert _threads._spare_cores() == 3
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0})
    assert _threads._spare_cores() == 1


def test_the_threshold_is_the_documented_2_to_the_21():
    assert _threads.PARALLEL_MIN_WORK == 2**21 == 128 * 128 * 128


@pytest.mark.parametrize("setting, threads", [("1", 1), ("2", 2), ("3", 3), (" 4 ", 4)],
                         ids=["1", "2", "3", "4-with-spaces"])
def test_a_number_in_xpann_blas_threads_forces_that_count_whatever_the_size(monkeypatch, setting, threads):
    for products in (SMALL, EDGE_BELOW, EDGE, LARGE):
        assert chosen(monkeypatch, 4, products, setting=setting) == threads


@pytest.mark.parametrize("setting", ["many", "0", "-2", "2.5", "auto2"])
def test_xpann_blas_threads_rejects_anything_else(monkeypatch, setting):
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, setting)
    controller = _FakeController(2)
    with pytest.raises(ValueError, match=_threads.ENVIRONMENT_VARIABLE):
        _threads.ThreadPlan(controller, SMALL)
    assert controller.libraries()[0].calls == []


@pytest.mark.parametrize("free, threads", [(None, 4), (0, 1), (1, 1), (2, 2), (3, 3), (4, 4), (9, 4)])
def test_adaptive_uses_the_free_cores_within_the_pool_for_large_products(monkeypatch, free, threads):
    assert chosen(monkeypatch, 4, LARGE, setting="adaptive", free=free) == threads
    assert chosen(monkeypatch, 4, SMALL, setting="adaptive", free=free) == 1
    assert chosen(monkeypatch, 4, LARGE, setting="auto", free=free) == 4  # auto ignores the load


@pytest.mark.parametrize("policy, expected", [("auto", 2), ("adaptive", 1)])
def test_only_the_adaptive_policy_follows_the_load_of_other_processes(monkeypatch, policy, expected):
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, policy)
    monkeypatch.setattr(_threads.CPU_LOAD, "free_cores", lambda: 1)  # another process holds a core
    monkeypatch.setattr(_threads, "_spare_cores", lambda: 3)  # a 4-core machine
    controller = _FakeController(2)
    with _threads.ThreadPlan(controller, [(4096, 4096, 4096)]) as plan:
        plan.refresh()
        assert plan.threads == expected
        assert controller.libraries()[0].num_threads == expected
    assert controller.libraries()[0].num_threads == 2


class _Clock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


def test_adaptive_samples_the_load_at_most_every_check_interval_and_counts_steps(monkeypatch):
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, "adaptive")
    clock, free = _Clock(), [1]
    monkeypatch.setattr(_threads, "time", clock)
    monkeypatch.setattr(_threads.CPU_LOAD, "free_cores", lambda: free[0])
    controller = _FakeController(4)
    with _threads.ThreadPlan(controller, LARGE) as plan:  # samples on entry: 1 free core
        assert plan.threads == 1 and controller.libraries()[0].num_threads == 1
        entry = dict(plan.steps)
        free[0] = 3
        clock.now += 0.05
        plan.refresh()  # within CHECK_INTERVAL (0.1 s) of the last sample: no new sample
        assert plan.threads == 1
        clock.now += 0.06
        plan.refresh()  # now 0.11 s: re-sampled, counted on the old count first
        assert plan.threads == 3 and controller.libraries()[0].num_threads == 3
        plan.refresh()
        steps = {count: plan.steps.get(count, 0) - entry.get(count, 0) for count in plan.steps}
        assert {count: n for count, n in steps.items() if n} == {1: 2, 3: 1}
    assert controller.libraries()[0].num_threads == 4


def test_the_plan_takes_the_smallest_pool_and_restores_each_library(monkeypatch):
    monkeypatch.delenv(_threads.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(_threads, "_spare_cores", lambda: 7)
    controller = _FakeController(4, 2)  # a library loaded after a threadpool_limits(2) block began
    with _threads.ThreadPlan(controller, LARGE) as plan:
        assert plan.allowed == 2 and plan.threads == 2
        assert [lib.num_threads for lib in controller.libraries()] == [2, 2]
    assert [lib.num_threads for lib in controller.libraries()] == [4, 2]
    with _threads.ThreadPlan(controller, SMALL) as plan:
        assert plan.threads == 1 and [lib.num_threads for lib in controller.libraries()] == [1, 1]
    assert [lib.num_threads for lib in controller.libraries()] == [4, 2]


def test_without_a_controllable_blas_the_plan_sets_nothing(monkeypatch):
    monkeypatch.setenv(_threads.ENVIRONMENT_VARIABLE, "3")
    with _threads.ThreadPlan(_FakeController(), LARGE) as plan:
        assert plan.threads is None and plan.allowed is None
        plan.refresh()
    assert plan.steps == {None: 1}


REAL_POOL = """
import json, os
import numpy
import threadpoolctl
import xpann
from xpann.backend import _threads

libraries = _threads.BLAS_THREADS.libraries()
out = {"libraries": len(libraries), "default": _threads.BLAS_THREADS.current(), "spare": _threads._spare_cores()}
if libraries:
    for lib in libraries:
        lib.set_num_threads(3)  # a known pool, whatever the core count
    def plan(products):
        with _threads.BLAS_THREADS.plan(products) as plan:
            return [plan.threads, _threads.BLAS_THREADS.current()]
    out["small"], out["large"] = plan([(64, 128, 128)]), plan([(256, 512, 784)])

    class Watch(xpann.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.add(_threads.BLAS_THREADS.current())

    rng = numpy.random.default_rng(1)
    x, y = rng.standard_normal((23, 6)).astype("float32"), rng.integers(0, 3, 23)
    model = xpann.Sequential([xpann.layers.Dense(8, activation="relu"), xpann.layers.Dense(3, activation="softmax")],
                             input_dim=6, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    seen = set()
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[Watch()], verbose=0)
    out["fit_auto"] = sorted(seen)
    os.environ["XPANN_BLAS_THREADS"] = "2"
    out["forced_small"], out["forced_large"] = plan([(64, 128, 128)]), plan([(256, 512, 784)])
    seen = set()
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[Watch()], verbose=0)
    out["fit_forced"] = sorted(seen)
    out["after"] = [lib.num_threads for lib in libraries]
print(json.dumps(out))
"""


def test_the_real_blas_pool_follows_the_policy_in_a_fresh_interpreter():
    env = {key: value for key, value in os.environ.items()
           if key not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", _threads.ENVIRONMENT_VARIABLE)}
    result = subprocess.run([sys.executable, "-c", REAL_POOL], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    if not out["libraries"]:
        pytest.skip("threadpoolctl finds no BLAS library to control here")
    assert out["default"] >= 1  # unpinned: OpenBLAS's own choice (the core count)
    large = min(3, out["spare"])  # auto leaves one core free
    assert out["small"] == [1, 1] and out["large"] == [large, large]
    assert out["fit_auto"] == [1]  # small products: one thread while training
    assert out["forced_small"] == [2, 2] and out["forced_large"] == [2, 2]
    assert out["fit_forced"] == [2]
    assert out["after"] == [3] * out["libraries"]  # the pool is given back


def test_fit_restores_the_pinned_pool_of_this_worker(monkeypatch):
    monkeypatch.delenv(_threads.ENVIRONMENT_VARIABLE, raising=False)
    before = _threads.BLAS_THREADS.current()
    x, y = data()
    mlp().fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert _threads.BLAS_THREADS.current() == before


def test_the_cpu_load_is_the_busy_time_of_other_processes_over_the_window():
    load = _threads.CpuLoad()
    if load._tick is None:
        pytest.skip("no /proc/stat and sched_getaffinity here")
    load._usable = 2
    samples = iter([(0.0, 10.0, 1.0),  # (wall seconds, machine busy seconds, this process's seconds)
                    (0.2, 10.3, 1.1),  # others: (0.3 - 0.1) / 0.2 = 1.0 core
                    (0.25, 10.4, 1.1),  # within the window: the previous estimate
                    (0.4, 10.37, 1.12),  # others: (0.07 - 0.02) / 0.2 = 0.25 core
                    (0.6, 10.44, 1.12),  # others: 0.07 / 0.2 = 0.35 core: a third of a core counts as busy
                    (0.8, 10.84, 1.12),  # others: 2 cores
                    (5.0, 20.0, 2.0)])  # over 10 windows since the last: unknown again
    load._sample = lambda: next(samples)
    assert load.free_cores() is None
    assert load.others() == pytest.approx(1.0) and load._last[0] == 0.2
    assert load.free_cores() == 1 and load._last[0] == 0.2
    assert load.free_cores() == 2
    assert load.free_cores() == 1
    assert load.free_cores() == 0
    assert load.free_cores() is None


def test_the_cpu_load_sample_on_this_machine_is_a_count_of_cores():
    load = _threads.CpuLoad()
    if load._tick is None:
        pytest.skip("no /proc/stat and sched_getaffinity here")
    assert load.others(window=0.01) is None  # the first sample only starts the window
    time.sleep(0.02)
    others = load.others(window=0.01)
    assert type(others) is float and others >= 0.0
    free = load.free_cores()
    assert type(free) is int and free <= len(os.sched_getaffinity(0))


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


