"""Dense: forward against x @ kernel + bias, and the kernel, bias and input gradients of backward
against central finite differences in float64, alone and through a model's loss."""

import numpy
import pytest

import reference
import xpann
from conftest import assert_backends_agree, finite_differences
from xpann import layers

ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus",
               "softmax"]


def dense_model(backend, units, activation, input_dim, use_bias=True, seed=0):
    """A one-layer model and its plan node, which returns dL/dx too (a first layer need not)."""
    model = xpann.Sequential([layers.Dense(units, activation=activation, use_bias=use_bias,
                                           bias_initializer="uniform")],
                             input_dim=input_dim, seed=seed, dtype="float64", backend=backend.name)
    node = model.plan.nodes[0]
    node.need_input_grad = True
    return model, node


def forward(node, x, training=True):
    return node.layer.forward(node, x, training)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_gradients(backend, activation, use_bias):
    rng = numpy.random.default_rng(0)
    model, dense = dense_model(backend, 3, activation, 4, use_bias)
    x = backend.asarray(rng.standard_normal((5, 4)))
    w = backend.asarray(rng.standard_normal((5, 3)))
    kernel = backend.to_numpy(dense.params["kernel"])
    bias = backend.to_numpy(dense.params["bias"]) if use_bias else 0.0

    y, backprop = forward(dense, x)
    z = backend.to_numpy(x) @ kernel + bias
    numpy.testing.assert_allclose(backend.to_numpy(y), reference.ACTIVATIONS[activation](z), rtol=1e-13, atol=1e-15)
    if activation in ("relu", "leaky_relu", "elu", "selu"):
        assert numpy.abs(z).min() > 1e-4, "a pre-activation sits on the kink; pick another seed"

    dx = backend.to_numpy(backprop(w)).copy()
    grads = backend.to_numpy(model.parameters.grad).copy()

    def objective():
        return float((forward(dense, x)[0] * w).sum())

    data = model.parameters.data
    numeric = finite_differences(objective, data)
    numpy.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)
    numpy.testing.assert_allclose(dx, finite_differences(objective, x), rtol=1e-6, atol=1e-8)
    # the layer's gradient attributes are views of the flat buffer, in weight order
    numpy.testing.assert_array_equal(backend.to_numpy(dense.grads["kernel"]).ravel(), grads[:12])
    assert grads.size == (15 if use_bias else 12)


def test_backward_without_input_gradient(backend):
    rng = numpy.random.default_rng(1)
    model, dense = dense_model(backend, 2, "tanh", 3)
    x = backend.asarray(rng.standard_normal((4, 3)))
    _, backprop = forward(dense, x)
    dy = backend.asarray(rng.standard_normal((4, 2)))
    full = backprop(dy)
    first = backend.to_numpy(model.parameters.grad).copy()
    dense.need_input_grad = False
    assert backprop(dy) is None
    numpy.testing.assert_array_equal(backend.to_numpy(model.parameters.grad), first)
    assert full.shape == (4, 3)


MODELS = {
    "softmax_sparse_ce": (["tanh", "softmax"], "sparse_categorical_crossentropy"),
    "softmax_ce": (["relu", "softmax"], "categorical_crossentropy"),
    "sigmoid_bce": (["elu", "sigmoid"], "binary_crossentropy"),
    "logits_bce": (["gelu", None], xpann.losses.BinaryCrossentropy(from_logits=True)),
    "linear_mse": (["swish", None], "mse"),
    "linear_huber": (["softplus", "linear"], xpann.losses.Huber(delta=0.3)),
    "softmax_layer_sparse_ce": (["selu", None, "softmax"], "sparse_categorical_crossentropy"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_gradients(backend, name):
    """Two Dense layers and a loss (fused with softmax/sigmoid where the model fuses them)."""
    activations, loss = MODELS[name]
    rng = numpy.random.default_rng(2)
    outputs = 3
    stack = [layers.Dense(5, activation=activations[0], bias_initializer="uniform"),
             layers.Dense(outputs, activation=activations[1], bias_initializer="uniform")]
    if len(activations) == 3:  # a separate Activation layer after a Dropout that keeps everything
        stack = [stack[0], layers.Dropout(0.0), stack[1], layers.Activation(activations[2])]
    model = xpann.Sequential(stack, input_dim=4, seed=1, dtype="float64", backend=backend.name)
    model.compile(optimizer="sgd", loss=loss)
    x = rng.standard_normal((6, 4))
    if "sparse" in name:
        y = rng.integers(0, outputs, 6)
    elif "softmax" in name:
        y = numpy.eye(outputs)[rng.integers(0, outputs, 6)]
    elif "bce" in name:
        y = rng.integers(0, 2, (6, outputs)).astype(float)
    else:
        y = rng.standard_normal((6, outputs))
    _, grads = model.compute_gradients(x, y)
    analytic = numpy.concatenate([g.ravel() for g in grads])

    def objective():
        return model.compute_gradients(x, y)[0]

    numeric = finite_differences(objective, model.parameters.data)
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_backends_agree_on_dense():
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((32, 6)).astype(numpy.float32)
    dy = rng.standard_normal((32, 4)).astype(numpy.float32)

    def run(backend):
        model = xpann.Sequential([layers.Dense(4, activation="gelu", bias_initializer="uniform")],
                                 input_dim=6, seed=4, backend=backend.name)
        dense = model.plan.nodes[0]
        dense.need_input_grad = True
        y, backprop = forward(dense, backend.asarray(x))
        dx = backprop(backend.asarray(dy))
        return [y, dx, model.parameters.grad]

    assert_backends_agree(run, "float32", rtol=1e-5, atol=1e-5)
