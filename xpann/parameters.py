"""All trainable tensors of a model as views into one flat buffer, and their gradients likewise,
so that an optimizer step is a few whole-buffer operations."""


class ParameterBuffer:
    """Flat ``data`` and ``grad`` arrays; tensor k is ``data[segments[k]].reshape(shapes[k])``."""

    def __init__(self, backend, dtype, layers):
        self.backend = backend
        self.entries = []  # (layer index, name, shape, initializer, fan_in, fan_out)
        for index, layer in enumerate(layers):
            for name, shape, initializer, fan_in, fan_out in layer.parameter_specs():
                self.entries.append((index, name, shape, initializer, fan_in, fan_out))
        self.segments = []
        start = 0
        for entry in self.entries:
            size = 1
            for extent in entry[2]:
                size *= extent
            self.segments.append(slice(start, start + size))
            start += size
        self.size = start
        self.data = backend.xp.zeros(start, dtype=dtype)
        self.grad = backend.xp.zeros(start, dtype=dtype)

    @property
    def shapes(self):
        return [entry[2] for entry in self.entries]

    def tensors(self, flat):
        """The views of ``flat`` (``data``, ``grad`` or a copy) shaped as the tensors, in weight order."""
        return [flat[part].reshape(entry[2]) for part, entry in zip(self.segments, self.entries)]

    def layer_views(self, flat, layer_index):
        """This layer's tensors of ``flat`` by name."""
        return {
            entry[1]: flat[part].reshape(entry[2])
            for part, entry in zip(self.segments, self.entries)
            if entry[0] == layer_index
        }

    def layer_block(self, flat, layer_index):
        """The contiguous part of ``flat`` that holds all of this layer's tensors (None if it has
        none): for a Dense layer, kernel rows then the bias, i.e. an (in + 1, out) matrix."""
        parts = [part for part, entry in zip(self.segments, self.entries) if entry[0] == layer_index]
        return flat[parts[0].start:parts[-1].stop] if parts else None

    def initialize(self, rng):
        """Draw every tensor on the host from ``rng``, then copy it to the device."""
        for view, entry in zip(self.tensors(self.data), self.entries):
            _, _, shape, initializer, fan_in, fan_out = entry
            view[...] = self.backend.asarray(initializer(shape, rng, fan_in, fan_out), dtype=view.dtype)

    def assign(self, arrays):
        """Copy host or device arrays, in weight order and of the right shapes, into the buffer."""
        for view, value in zip(self.tensors(self.data), arrays):
            view[...] = self.backend.asarray(value, dtype=view.dtype)
