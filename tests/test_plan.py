"""The step plan: its fusion rules on and off give the same numbers, the nodes own the buffers,
files of the first round still load, and evaluate and predict are safe from several threads."""

import pathlib
import threading

import numpy
import pytest

import reference
import xpann
from conftest import TOLERANCES, assert_weights_equal
from xpann import layers

DATA = pathlib.Path(__file__).resolve().parent / "data"


def stack():
    return [layers.Dense(9, activation="relu"), layers.Dense(8, activation="linear"), layers.Dense(7, activation="relu"),
            layers.Dense(4, activation="softmax")]


def build(fuse, optimizer="adam", dtype="float64"):
    model = xpann.Sequential(stack(), seed=3, dtype=dtype)
    model._fuse = fuse
    model.build(6)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_planner_applies_each_rule_only_where_it_fits():
    plan = build(True, dtype="float32").plan
    assert [node.ones_in is not None for node in plan.nodes] == [False, True, True, True]  # after relu, linear, relu
    assert plan.nodes[-1].fortran == xpann.get_backend().narrow_columns_fortran
    assert plan.fused_loss
    off = build(False).plan
    assert not off.fused_loss and not any(node.ones_in or node.fortran for node in off.nodes)
    assert all(node.fused_relu is None for node in off.nodes)
    mse = xpann.Sequential(stack(), input_dim=6)
    mse.compile("sgd", "mse")
    assert not mse.plan.fused_loss  # mse on softmax outputs has no logits rule


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fusion_on_and_off_give_the_same_training(optimizer):
    rng = numpy.random.default_rng(0)
    x, y = rng.standard_normal((45, 6)), rng.integers(0, 4, 45)
    fused, plain = build(True, optimizer), build(False, optimizer)
    loss_fused, grads_fused = fused.compute_gradients(x, y)
    loss_plain, grads_plain = plain.compute_gradients(x, y)
    assert loss_fused == pytest.approx(loss_plain, rel=1e-12)
    for got, want in zip(grads_fused, grads_plain):
        numpy.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    history_fused = fused.fit(x, y, epochs=3, batch_size=8, verbose=0)
    history_plain = plain.fit(x, y, epochs=3, batch_size=8, verbose=0)
    numpy.testing.assert_allclose(history_fused.history["loss"], history_plain.history["loss"], rtol=1e-9)
    for got, want in zip(fused.get_weights(), plain.get_weights()):
        numpy.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    numpy.testing.assert_allclose(fused.predict(x), plain.predict(x), rtol=1e-8, atol=1e-10)


def test_training_buffers_belong_to_the_nodes_not_the_layers():
    model = build(True, dtype="float32")
    rng = numpy.random.default_rng(0)
    model.fit(rng.standard_normal((10, 6)).astype("float32"), rng.integers(0, 4, 10), epochs=1, batch_size=4,
              verbose=0)
    for layer, node in zip(model.layers, model.plan.nodes):
        assert not [key for key in vars(layer) if key.startswith("_")]
        assert node.layer is layer and node._spaces


def first_round_reference(x):
    """The first-round file's network (Dense relu 5, Dropout, Dense softmax 3) in float64 NumPy,
    from the weights stored in the file itself, read without xpann."""
    with numpy.load(DATA / "first_round_model.npz", allow_pickle=False) as stored:
        k1, b1, k2, b2 = (stored[f"weight_{i}"].astype(numpy.float64) for i in range(4))
    hidden = reference.ACTIVATIONS["relu"](x.astype(numpy.float64) @ k1 + b1)  # no dropout at inference
    return reference.softmax(hidden @ k2 + b2)


def test_a_first_round_model_file_still_loads_and_predicts_by_the_formula():
    model = xpann.load_model(DATA / "first_round_model.npz")
    x = numpy.load(DATA / "first_round_inputs.npy")
    assert model.dtype == "float32"
    predicted = model.predict(x)
    assert predicted.dtype == numpy.float32 and predicted.shape == (30, 3)
    numpy.testing.assert_allclose(predicted, first_round_reference(x), **TOLERANCES["float32"])
    with numpy.load(DATA / "first_round_model.npz", allow_pickle=False) as stored:
        assert_weights_equal(model.get_weights(), [stored[f"weight_{i}"] for i in range(4)])
    assert model.optimizer.iterations == 8 and list(model.named_weights()) == [
        "dense_1/kernel", "dense_1/bias", "dense_3/kernel", "dense_3/bias"]


def test_the_first_round_network_in_float64_predicts_by_the_formula():
    """The same layers and weights in float64: the reference to float64's precision."""
    loaded = xpann.load_model(DATA / "first_round_model.npz")
    model = xpann.Sequential([layers.Dense(5, activation="relu"), layers.Dropout(0.1),
                              layers.Dense(3, activation="softmax")], input_dim=4, seed=0, dtype="float64")
    model.set_weights(loaded.get_weights())
    x = numpy.load(DATA / "first_round_inputs.npy").astype(numpy.float64)
    numpy.testing.assert_allclose(model.predict(x), first_round_reference(x), **TOLERANCES["float64"])


def test_evaluate_and_predict_from_several_threads_give_each_caller_its_numbers():
    rng = numpy.random.default_rng(0)
    model = build(True, dtype="float32")
    sets = [(rng.standard_normal((rows, 6)).astype("float32"), rng.integers(0, 4, rows)) for rows in (17, 40, 93)]
    expected = [(model.evaluate(x, y), model.predict(x)) for x, y in sets]
    wrong = []

    def worker(k):
        for _ in range(30):
            x, y = sets[k % 3]
            if model.evaluate(x, y) != expected[k % 3][0] or not numpy.array_equal(model.predict(x), expected[k % 3][1]):
                wrong.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
