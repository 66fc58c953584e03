"""Activation functions with their derivatives, written once over a backend.

Each activation maps the pre-activation ``z`` to ``y = f(z)``; ``backward(backend, dy, z, y)``
returns ``dL/dz = dL/dy * f'(z)``. An activation whose ``uses_input`` is False needs only ``y``
in backward, so a layer need not keep ``z``.
"""

import math

from ._checks import non_negative, positive
from ._registry import Configurable, Registry


class Activation(Configurable):
    """Base class: ``y = f(z)`` and its derivative."""

    name = "activation"
    uses_input = True

    def forward(self, backend, z):
        raise NotImplementedError

    def backward(self, backend, dy, z, y):
        raise NotImplementedError


    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))


class Linear(Activation):
    """f(z) = z."""

    name = "linear"
    uses_input = False

    def forward(self, backend, z):
        return z

    def backward(self, backend, dy, z, y):
        return dy


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)), computed from exp(-|z|) so it never overflows; f' = (1 - y) y."""

    name = "sigmoid"
    uses_input = False

    def forward(self, backend, z):
        return sigmoid(backend.xp, z)

    def backward(self, backend, dy, z, y):
        return dy * (1 - y) * y  # torch's sigmoid_backward order


def sigmoid(xp, z):
    """Stable logistic function: 1/(1+e) for z >= 0 and e/(1+e) below, with e = exp(-|z|)."""
    e = xp.exp(-xp.abs(z))
    r = 1 / (1 + e)
    return xp.where(z >= 0, r, e * r)


class Tanh(Activation):
    """f(z) = tanh(z); f' = 1 - y^2."""

    name = "tanh"
    uses_input = False

    def forward(self, backend, z):
        return backend.xp.tanh(z)

    def backward(self, backend, dy, z, y):
        return dy * (1 - y * y)


class ReLU(Activation):
    """f(z) = max(z, 0); f' = [y > 0]."""

    name = "relu"
    uses_input = False

    def forward(self, backend, z):
        return backend.xp.maximum(z, 0)

    def backward(self, backend, dy, z, y):
        return backend.xp.where(y > 0, dy, 0)


class LeakyReLU(Activation):
    """f(z) = z for z > 0, else negative_slope * z; with a slope >= 0, y > 0 exactly where z > 0."""

    name = "leaky_relu"
    uses_input = False

    def __init__(self, negative_slope=0.01):
        self.negative_slope = non_negative("negative_slope", negative_slope)

    def forward(self, backend, z):
        return backend.xp.where(z > 0, z, z * self.negative_slope)

    def backward(self, backend, dy, z, y):
        return backend.xp.where(y > 0, dy, dy * self.negative_slope)

    def get_config(self):
        return {"negative_slope": self.negative_slope}


class ELU(Activation):
    """f(z) = z for z > 0, else alpha * (exp(z) - 1); f' = 1, else y + alpha."""

    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = positive("alpha", alpha)

    def forward(self, backend, z):
        xp = backend.xp
        return xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0)))

    def backward(self, backend, dy, z, y):
        return backend.xp.where(z > 0, dy, dy * (y + self.alpha))

    def get_config(self):
        return {"alpha": self.alpha}


class SELU(Activation):
    """f(z) = scale * (z for z > 0, else alpha * (exp(z) - 1)), with the self-normalising constants."""

    name = "selu"
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, backend, z):
        xp = backend.xp
        return self.scale * xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0)))

    def backward(self, backend, dy, z, y):
        return backend.xp.where(z > 0, dy * self.scale, dy * (y + self.scale * self.alpha))


class GELU(Activation):
    """f(z) = z * Phi(z), Phi(z) = erfc(-z / sqrt 2) / 2 (exact, also far below 0); f' = Phi(z) + z * phi(z)."""

    name = "gelu"

    def forward(self, backend, z):
        return 0.5 * z * backend.erfc(z * (-1 / math.sqrt(2)))

    def backward(self, backend, dy, z, y):
        xp = backend.xp
        cdf = 0.5 * backend.erfc(z * (-1 / math.sqrt(2)))
        pdf = xp.exp(-0.5 * z * z) * (1 / math.sqrt(2 * math.pi))
        return dy * (cdf + z * pdf)


class Swish(Activation):
    """f(z) = z * sigmoid(z) (SiLU); f' = s * (1 + z * (1 - s))."""

    name = "swish"

    def forward(self, backend, z):
        return z * sigmoid(backend.xp, z)

    def backward(self, backend, dy, z, y):
        s = sigmoid(backend.xp, z)
        return dy * s * (1 + z * (1 - s))


class Softplus(Activation):
    """f(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)); f' = sigmoid(z) = 1 - exp(-y)."""

    name = "softplus"
    uses_input = False

    def forward(self, backend, z):
        xp = backend.xp
        return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(self, backend, dy, z, y):
        return dy * -backend.xp.expm1(-y)


class Softmax(Activation):
    """f(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z) over the last axis;
    dz = y * (dy - sum(dy * y))."""

    name = "softmax"
    uses_input = False

    def forward(self, backend, z):
        xp = backend.xp
        e = xp.exp(z - z.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def backward(self, backend, dy, z, y):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


ACTIVATIONS = Registry(
    "activation",
    {
        "linear": Linear,
        "sigmoid": Sigmoid,
        "tanh": Tanh,
        "relu": ReLU,
        "leaky_relu": LeakyReLU,
        "elu": ELU,
        "selu": SELU,
        "gelu": GELU,
        "swish": Swish,
        "silu": Swish,
        "softplus": Softplus,
        "softmax": Softmax,
    },
    base=Activation,
)


def get(identifier):
    """An Activation from a name, an instance, or None (linear)."""
    if identifier is None:
        return Linear()
    return ACTIVATIONS.get(identifier)


def serialize(activation):
    return ACTIVATIONS.serialize(activation)


def deserialize(config):
    return ACTIVATIONS.deserialize(config)
