"""The layer protocol: a layer is configuration and math. Its tensors, buffers and the record of
its last call live in the step plan's node for it (``xpann.plan``), which the layer receives.

``forward(node, x, training)`` returns ``(y, backprop)``: ``backprop(dy)`` writes the gradients of
the layer's parameters into ``node.grads`` (views of the model's flat gradient buffer) and returns
dL/dx, or None where ``node.need_input_grad`` is False. Inference returns ``(y, None)``.
"""

MAX_NAME_LENGTH = 128  # a layer's name is part of every tensor's name in the model file


class Layer:
    """Base class. A layer belongs to one model (``model``) and is built for an input width."""

    activation = None
    """The activation that ends the layer (Dense, Activation), or None."""
    keeps_units = False
    """True when output unit j depends on input unit j alone, up to scale and shift (Dropout and the
    normalizations): the diagnostics look through such a layer to the activation after it."""
    draws_per_row = False
    """True when training draws random numbers per row (Dropout): data-parallel training then
    draws them for the whole global batch on every rank (``node.batch_rows``)."""
    batch_statistics = False
    """True when training normalises by statistics over the batch (BatchNormalization)."""

    def __init__(self, name=None):
        if name is not None:
            if not isinstance(name, str):
                raise ValueError(f"name must be a string, got {name!r}.")
            if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() or "/" in name or name != name.strip():
                raise ValueError(f"A layer name must be 1 to {MAX_NAME_LENGTH} printable characters without '/' or "
                                 f"surrounding spaces, got {name!r}.")
        self.name = name
        self.model = None
        self.input_dim = None
        self.output_dim = None

    def build(self, input_dim):
        """Fix the input width; returns the output width."""
        self.input_dim = input_dim
        self.output_dim = input_dim
        return self.output_dim

    def parameter_specs(self):
        """(name, shape, initializer, fan_in, fan_out) of each trainable tensor, in weight order."""
        return []

    def state_specs(self):
        """(name, shape, initial value) of each tensor that is kept but not trained, after the
        trainable ones in weight order; no optimizer and no weight decay touches them."""
        return []

    def prepare(self, node):
        """Set up what the layer's calls need on ``node`` once the planner has placed it (views,
        constants, the backend's compiled kernels)."""

    def new_workspace(self, node, rows):
        """This layer's training buffers for batches of ``rows`` samples (kept by the node)."""
        return Workspace(rows)

    def check_input(self, backend, x):
        """Raise ValueError for inputs this layer cannot take (before anything is trained)."""

    def matmul_products(self, rows, need_input_grad=True):
        """(m, n, k) of each matrix product one training step on ``rows`` samples runs here."""
        return []

    def forward(self, node, x, training):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name} if self.name else {}

    def __repr__(self):
        def short(value):  # a nested activation or initializer by its class name
            return value["class_name"] if isinstance(value, dict) and "class_name" in value else repr(value)

        args = ", ".join(f"{key}={short(value)}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Workspace:
    """One batch size's training buffers of a layer (attributes set by the layer)."""

    def __init__(self, rows):
        self.rows = rows
