"""BatchNormalization (torch.nn.BatchNorm1d's rule) and LayerNormalization (torch.nn.LayerNorm)."""

from .. import initializers
from .._checks import fraction, positive
from ._base import Layer


class _Normalization(Layer):
    """y = gamma * xhat + beta with xhat the input normalised; gamma starts at 1, beta at 0."""

    keeps_units = True

    def parameter_specs(self):
        width = (self.input_dim,)
        return [("gamma", width, initializers.Ones(), self.input_dim, self.input_dim),
                ("beta", width, initializers.Zeros(), self.input_dim, self.input_dim)]

    def _scale_shift(self, node, xhat):
        return xhat * node.params["gamma"] + node.params["beta"]

    def prepare(self, node):
        if not node.xp.asarray(self.epsilon, dtype=node.dtype) > 0:
            raise ValueError(f"{type(self).__name__}: epsilon={self.epsilon:g} is 0 in {node.dtype} (it would divide "
                             "a constant feature by 0); give a larger epsilon, such as 1e-5.")

    def _parameter_gradients(self, node, dy, xhat):
        """dL/dgamma = sum_i dy * xhat, dL/dbeta = sum_i dy, written into the node's gradients."""
        xp = node.xp
        xp.sum(dy * xhat, axis=0, out=node.grads["gamma"])
        xp.sum(dy, axis=0, out=node.grads["beta"])


class BatchNormalization(_Normalization):
    """Over the batch axis: xhat = (x - mean) / sqrt(var + eps) with the batch mean and biased
    variance in training, the moving statistics in inference; after each training batch
    ``moving = (1 - momentum) * moving + momentum * batch`` with the unbiased batch variance
    (torch's convention). A training batch of one sample normalises to 0 and leaves the moving
    statistics as they are (its unbiased variance does not exist)."""

    batch_statistics = True

    def __init__(self, momentum=0.1, epsilon=1e-5, name=None):
        super().__init__(name)
        self.momentum = fraction("momentum", momentum)
        self.epsilon = positive("epsilon", epsilon)

    def state_specs(self):
        width = (self.input_dim,)
        return [("moving_mean", width, 0.0), ("moving_variance", width, 1.0)]

    def forward(self, node, x, training):
        xp = node.xp
        if not training:
            state = node.state
            xhat = (x - state["moving_mean"]) / xp.sqrt(state["moving_variance"] + self.epsilon)
            return self._scale_shift(node, xhat), None
        if node.reduce_statistics is None:
            n = x.shape[0]
            mean = x.mean(axis=0)
            centered = x - mean
            variance = (centered * centered).mean(axis=0)
        else:  # data-parallel training: the statistics of the global batch
            n, mean, centered, variance = node.reduce_statistics(x)
        inverse = 1 / xp.sqrt(variance + self.epsilon)
        xhat = centered * inverse
        if n > 1:
            m = self.momentum
            moving_mean, moving_variance = node.state["moving_mean"], node.state["moving_variance"]
            moving_mean *= 1 - m
            moving_mean += m * mean
            moving_variance *= 1 - m
            moving_variance += (m * n / (n - 1)) * variance

        def backprop(dy):
            self._parameter_gradients(node, dy, xhat)
            if not node.need_input_grad:
                return None
            g = dy * node.params["gamma"]
            sums = g.sum(axis=0), (g * xhat).sum(axis=0)
            if node.reduce_sums is not None:
                sums = node.reduce_sums(sums)
            return (inverse / n) * (n * g - sums[0] - xhat * sums[1])

        return self._scale_shift(node, xhat), backprop

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


class LayerNormalization(_Normalization):
    """Over the feature axis of each sample: xhat = (x - mean) / sqrt(var + eps), biased variance."""

    def __init__(self, epsilon=1e-5, name=None):
        super().__init__(name)
        self.epsilon = positive("epsilon", epsilon)

    def forward(self, node, x, training):
        xp = node.xp
        centered = x - x.mean(axis=-1, keepdims=True)
        variance = (centered * centered).mean(axis=-1, keepdims=True)
        inverse = 1 / xp.sqrt(variance + self.epsilon)
        xhat = centered * inverse
        if not training:
            return self._scale_shift(node, xhat), None

        def backprop(dy):
            self._parameter_gradients(node, dy, xhat)
            if not node.need_input_grad:
                return None
            g = dy * node.params["gamma"]
            return inverse * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

        return self._scale_shift(node, xhat), backprop

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
