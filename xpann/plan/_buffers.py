"""A model's tensors as views into flat buffers: trainable ones in ``data`` (their gradients in
``grad``, alike), so an optimizer step is a few whole-buffer operations; state that is kept but not
trained (BatchNormalization's moving statistics) in ``state``, which no optimizer touches."""

from collections import namedtuple

TensorSpec = namedtuple("TensorSpec", "layer name shape initializer fan_in fan_out")
"""One trainable tensor: its layer's index, its name in the layer, shape, initializer and fans."""

StateSpec = namedtuple("StateSpec", "layer name shape initial")
"""One state tensor: its layer's index, its name in the layer, shape and initial value."""


def _segments(shapes):
    segments, start = [], 0
    for shape in shapes:
        size = 1
        for extent in shape:
            size *= extent
        segments.append(slice(start, start + size))
        start += size
    return segments, start


class _FlatBuffer:
    """Tensor k of a flat array is ``flat[segments[k]].reshape(entries[k].shape)``."""

    def __init__(self, backend, dtype, entries):
        self.backend = backend
        self.entries = entries
        self.segments, self.size = _segments([entry.shape for entry in entries])

    @property
    def shapes(self):
        return [entry.shape for entry in self.entries]

    def tensors(self, flat):
        """The views of ``flat`` shaped as the tensors, in order."""
        return [flat[part].reshape(entry.shape) for part, entry in zip(self.segments, self.entries)]

    def layer_views(self, flat, layer_index):
        """This layer's tensors of ``flat`` by name."""
        return {entry.name: flat[part].reshape(entry.shape)
                for part, entry in zip(self.segments, self.entries) if entry.layer == layer_index}

    def layer_span(self, layer_index):
        """The slice of the flat buffer that holds all of this layer's tensors (None if it has
        none): layers lie in order, so the spans of layers k, k + 1, ... join into one slice."""
        parts = [part for part, entry in zip(self.segments, self.entries) if entry.layer == layer_index]
        return slice(parts[0].start, parts[-1].stop) if parts else None

    def layer_block(self, flat, layer_index):
        """The contiguous part of ``flat`` that holds all of this layer's tensors (None if it has
        none): for a Dense layer, kernel rows then the bias, i.e. an (in + 1, out) matrix."""
        span = self.layer_span(layer_index)
        return None if span is None else flat[span]


class ParameterBuffer(_FlatBuffer):
    """The trainable tensors: flat ``data`` and ``grad``."""

    def __init__(self, backend, dtype, layers):
        entries = [TensorSpec(index, *spec) for index, layer in enumerate(layers) for spec in layer.parameter_specs()]
        super().__init__(backend, dtype, entries)
        self.data = backend.xp.zeros(self.size, dtype=dtype)
        self.grad = backend.xp.zeros(self.size, dtype=dtype)

    def initialize(self, rng):
        """Draw every tensor on the host from ``rng``, then copy it to the device."""
        for view, entry in zip(self.tensors(self.data), self.entries):
            value = entry.initializer(entry.shape, rng, entry.fan_in, entry.fan_out)
            view[...] = self.backend.asarray(value, dtype=view.dtype)


class StateBuffer(_FlatBuffer):
    """The tensors kept but not trained: flat ``data``, set to their initial values."""

    def __init__(self, backend, dtype, layers):
        entries = [StateSpec(index, *spec) for index, layer in enumerate(layers) for spec in layer.state_specs()]
        super().__init__(backend, dtype, entries)
        self.data = backend.xp.zeros(self.size, dtype=dtype)
        self.reset()

    def reset(self):
        for view, entry in zip(self.tensors(self.data), self.entries):
            view[...] = entry.initial


def weight_order(parameters, state, layer_count):
    """(buffer, position) of every tensor in get_weights' order: layer by layer, its trainable
    tensors and then its state (BatchNormalization: gamma, beta, moving_mean, moving_variance)."""
    order = []
    for layer in range(layer_count):
        for buffer in (parameters, state):
            order += [(buffer, k) for k, entry in enumerate(buffer.entries) if entry.layer == layer]
    return order
