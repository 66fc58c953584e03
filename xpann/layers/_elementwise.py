"""Layers that act element by element: Activation and Dropout."""

from .. import activations
from .._checks import fraction
from ._base import Layer


class Activation(Layer):
    """y = activation(x), elementwise (softmax over the last axis)."""

    keeps_units = True

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = activations.get(activation)

    def forward(self, node, x, training, activate=True):
        """``activation(x)``, or x itself with ``activate=False`` (backprop then takes dL/dx)."""
        if not activate:
            return x, (lambda dz: dz) if training else None
        y = self.activation.forward(node.backend, x)
        if not training:
            return y, None

        def backprop(dy):
            return self.activation.backward(node.backend, dy, x, y)

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: in training y = x * mask / (1 - rate), mask ~ Bernoulli(1 - rate); else y = x.
    The masks come from the model's seeded device generator."""

    keeps_units = True
    draws_per_row = True

    def __init__(self, rate, name=None):
        super().__init__(name)
        self.rate = fraction("rate", rate)

    def forward(self, node, x, training):
        if not training or self.rate == 0:
            return x, (lambda dy: dy) if training else None
        if node.batch_rows is None:
            draws = node.generator.random(x.shape, dtype=x.dtype)
        else:  # this rank's rows of the global batch's draws
            first, rows = node.batch_rows
            draws = node.generator.random((rows,) + x.shape[1:], dtype=x.dtype)[first:first + x.shape[0]]
        keep = draws >= self.rate
        mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * mask, (lambda dy: dy * mask)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
