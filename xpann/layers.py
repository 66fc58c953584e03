"""Layers: forward keeps what backward needs; backward fills the parameter gradients
(views into the model's flat gradient buffer) and returns the input gradient."""

from . import activations, initializers
from ._checks import fraction, positive_int


class Layer:
    """Base class. A layer belongs to one model (``model``), is built for an input width, then
    attached to that model's backend and weights."""

    def __init__(self, name=None):
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be a string, got {name!r}.")
        self.name = name
        self.model = None
        self.input_dim = None
        self.output_dim = None
        self.backend = None

    def build(self, input_dim):
        """Fix the input width; returns the output width."""
        self.input_dim = input_dim
        self.output_dim = input_dim
        return self.output_dim

    def parameter_specs(self):
        """(name, shape, initializer, fan_in, fan_out) of each trainable tensor, in weight order."""
        return []

    def attach(self, backend, dtype, parameters, gradients, device_generator):
        """Take the backend, the views of this layer's parameters and gradients, and a device RNG."""
        self.backend = backend
        self.dtype = dtype
        for name, view in parameters.items():
            setattr(self, name, view)
        for name, view in gradients.items():
            setattr(self, name + "_grad", view)
        self._workspaces = {}
        self._space = None

    def matmul_products(self, rows, need_input_grad=True):
        """(m, n, k) of each matrix product one training step on ``rows`` samples runs here."""
        return []

    def _workspace(self, rows):
        """This layer's training buffers for batches of ``rows`` samples.

        Training reuses them from step to step (no allocation per step); the two most recent batch
        sizes are kept (a whole batch and the last, partial one). Inference never uses them, so
        what predict and evaluate return never aliases memory that a later call overwrites; a
        training forward's output stays valid until the next training step.
        """
        space = self.__dict__.get("_space")
        if space is not None and space.rows == rows:
            return space
        spaces = self.__dict__.setdefault("_workspaces", {})
        space = spaces.get(rows)
        if space is None:
            if len(spaces) >= 2:
                del spaces[next(iter(spaces))]
            space = spaces[rows] = self._new_workspace(rows)
        self._space = space
        return space

    def _new_workspace(self, rows):
        return Workspace(rows)

    def attach_block(self, parameters, gradients):
        """Take the contiguous flat views of all this layer's parameters and of their gradients."""

    def link_input(self, producer):
        """Called by the model with the layer whose output feeds this one, once both are attached."""

    def mark_output(self):
        """Called by the model on its last layer once attached."""

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy, need_input_grad=True):
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


FORTRAN_MAX_UNITS = 32
"""An output layer with at most this many units keeps its logits column-major where the backend
asks for it (``narrow_columns_fortran``): the loss's row-wise softmax then runs 1.2-3x faster in
NumPy; from about 100 columns on, row-major is faster."""


class Dense(Layer):
    """y = activation(x @ kernel + bias), kernel (in, out), bias (out,)."""

    def __init__(self, units, activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", use_bias=True, name=None):
        super().__init__(name)
        self.units = positive_int("units", units)
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.use_bias = bool(use_bias)

    def build(self, input_dim):
        self.input_dim = input_dim
        self.output_dim = self.units
        return self.units

    def parameter_specs(self):
        fans = (self.input_dim, self.units)
        specs = [("kernel", (self.input_dim, self.units), self.kernel_initializer, *fans)]
        if self.use_bias:
            specs.append(("bias", (self.units,), self.bias_initializer, *fans))
        return specs

    def attach(self, backend, dtype, parameters, gradients, device_generator):
        super().attach(backend, dtype, parameters, gradients, device_generator)
        kind = type(self.activation)
        self._relu = kind is activations.ReLU
        self._linear = kind is activations.Linear
        # max(z, zeros row) runs about 3x faster in NumPy than max(z, 0): a scalar operand takes
        # a slow loop there.
        self._zeros = backend.xp.zeros(self.units, dtype=dtype) if self._relu else None
        # one-pass kernels (numba, when installed) for the training step's bias + ReLU and ReLU
        # backward; bitwise the same results as the array code
        fused = getattr(backend, "fused_kernel", None) if self._relu else None
        self._fused_relu = None
        if fused is not None:
            kernels = (fused("bias_relu"), fused("relu"), fused("relu_backward"))
            self._fused_relu = kernels if all(k is not None for k in kernels) else None
        self._fortran = False
        self._x = self._z = self._y = None
        self._kernel_bias = self._kernel_bias_grad = None
        self._ones_source = None  # the Dense layer whose output carries a ones column for us
        self._ones_column = False  # whether our training output carries one
        self._x_ones = self._y_ones = None

    def attach_block(self, parameters, gradients):
        if self.use_bias:
            shape = (self.input_dim + 1, self.units)
            self._kernel_bias, self._kernel_bias_grad = parameters.reshape(shape), gradients.reshape(shape)

    def link_input(self, producer):
        """Fold this layer's bias into its products when ``producer`` is a ReLU or linear Dense
        layer: its training output then sits in a buffer with one more column of ones, so that
        ``[y, 1] @ [kernel; bias]`` adds the bias inside the product and ``[y, 1].T @ dz`` gives
        the kernel and bias gradients in one product (the flat buffer holds each layer's kernel
        rows and then its bias: an (in + 1, out) matrix). Saves an element-wise pass and a
        matrix-vector product per layer and step."""
        if (self.use_bias and isinstance(producer, Dense) and (producer._relu or producer._linear)
                and not producer._fortran):
            self._ones_source = producer
            producer._ones_column = True
            producer._workspaces, producer._space = {}, None

    def mark_output(self):
        """As the model's output layer, keep few-unit logits column-major where the backend
        reduces short rows slowly (see ``FORTRAN_MAX_UNITS``)."""
        self._fortran = self.backend.narrow_columns_fortran and 1 < self.units <= FORTRAN_MAX_UNITS
        self._workspaces, self._space = {}, None

    def matmul_products(self, rows, need_input_grad=True):
        products = [(rows, self.units, self.input_dim), (self.input_dim, self.units, rows)]
        if need_input_grad:
            products.append((rows, self.input_dim, self.units))
        return products

    def _new_workspace(self, rows):
        xp, dtype, shape = self.backend.xp, self.dtype, (rows, self.units)
        space = Workspace(rows)
        space.z = xp.empty(shape, dtype=dtype)
        space.y = xp.empty(shape, dtype=dtype) if self._relu else None
        space.ones_block = None
        if self._ones_column:  # the output (y for ReLU, z when linear) gets a column of ones
            space.ones_block = xp.empty((rows, self.units + 1), dtype=dtype)
            space.ones_block[:, self.units] = 1
            if self._relu:
                space.y = space.ones_block[:, :self.units]
            else:
                space.z = space.ones_block[:, :self.units]
        space.mask = xp.empty(shape, dtype=bool) if self._relu else None
        space.dz = xp.empty(shape, dtype=dtype) if self._relu else None
        space.ones = xp.ones(rows, dtype=dtype) if self.use_bias else None
        space.dx = None  # made at the first backward that needs the input gradient
        space.z_fortran = xp.empty(shape, dtype=dtype, order="F") if self._fortran else None
        space.dz_rows = xp.empty(shape, dtype=dtype) if self._fortran else None
        return space

    def forward(self, x, training=False, activate=True):
        """``activation(x @ kernel + bias)``. In training the products land in reused buffers;
        ``activate=False`` stops at the logits (the output is then computed only if asked for)."""
        xp = self.backend.xp
        x_ones = None
        if training:
            gemm = self.backend.gemm
            space = self._workspace(x.shape[0])
            source = self._ones_source
            if source is not None and source._y is x:
                x_ones = source._y_ones
            if x_ones is not None:
                z = gemm(x_ones, self._kernel_bias, out=space.z)
            else:
                z = gemm(x, self.kernel, out=space.z)
        else:
            space = None
            z = x @ self.kernel
        if space is not None and self._fused_relu is not None and activate and not self._fortran:
            # training forward of a ReLU layer in one pass: z += bias (unless folded), y = relu(z).
            # Where y is the first columns of the block with the ones column, the kernel gets the
            # whole (contiguous) block: a strided view would keep the loop from vectorizing.
            y_target = space.y if space.ones_block is None else space.ones_block
            if self.use_bias and x_ones is None:
                self._fused_relu[0](z, self.bias, y_target)
            else:
                self._fused_relu[1](z, y_target)
            self._x, self._z, self._x_ones, self._y = x, z, x_ones, space.y
            self._y_ones = space.ones_block
            return space.y
        if self.use_bias and x_ones is None:
            z += self.bias
        if self._fortran:
            if space is None:
                z = xp.asfortranarray(z)
            else:
                xp.copyto(space.z_fortran, z)
                z = space.z_fortran
        self._x, self._z, self._x_ones = x, z, x_ones
        y = self._activate(z, space) if activate else None
        self._y = y
        self._y_ones = space.ones_block if space is not None and space.ones_block is not None and (
            y is space.y or y is space.z) else None
        return y

    def _activate(self, z, space):
        if self._linear:
            return z
        if self._relu:
            return self.backend.xp.maximum(z, self._zeros, out=None if space is None else space.y)
        return self.activation.forward(self.backend, z)

    @property
    def logits(self):
        """The pre-activation of the last forward pass."""
        return self._z

    @property
    def output(self):
        """The activation output of the last forward pass."""
        if self._y is None and self._z is not None:
            self._y = self.activation.forward(self.backend, self._z)
        return self._y

    def backward(self, dy, need_input_grad=True):
        if self._linear:
            dz = dy
        elif self._relu:
            # dy * [y > 0]: the same values as where(y > 0, dy, 0) for finite dy, and 10-20x
            # faster in NumPy, whose where() branches per element.
            xp = self.backend.xp
            space = self._workspace(dy.shape[0])
            if self._fused_relu is not None and self._y is space.y:
                dz = space.dz
                self._fused_relu[2](dy, space.y if space.ones_block is None else space.ones_block, dz)
            else:
                dz = xp.multiply(dy, xp.greater(self._y, 0, out=space.mask), out=space.dz)
        else:
            dz = self.activation.backward(self.backend, dy, self._z, self.output)
        return self.backward_from_logits(dz, need_input_grad)

    def backward_from_logits(self, dz, need_input_grad=True):
        """Backward from dL/dz, skipping the activation (used when the loss is fused with it)."""
        gemm = self.backend.gemm
        space = self._workspace(dz.shape[0])
        if self._fortran and not dz.flags.c_contiguous:
            # back to row-major: a column-major gradient slows the input-gradient product.
            self.backend.xp.copyto(space.dz_rows, dz)
            dz = space.dz_rows
        if self._x_ones is not None:
            gemm(self._x_ones.T, dz, out=self._kernel_bias_grad)
        else:
            gemm(self._x.T, dz, out=self.kernel_grad)
            if self.use_bias:
                # ones @ dz: a matrix-vector product, 2-3x faster than dz.sum(axis=0) in NumPy.
                gemm(space.ones, dz, out=self.bias_grad)
        if not need_input_grad:
            return None
        if space.dx is None:
            space.dx = self.backend.xp.empty((space.rows, self.input_dim), dtype=self.dtype)
        return gemm(dz, self.kernel.T, out=space.dx)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "use_bias": self.use_bias,
        }


class Activation(Layer):
    """y = activation(x), elementwise (softmax over the last axis)."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = activations.get(activation)

    def forward(self, x, training=False, activate=True):
        """``activation(x)``; ``activate=False`` only keeps x (the output is computed if asked for)."""
        self._x = x
        self._y = self.activation.forward(self.backend, x) if activate else None
        return self._y

    @property
    def logits(self):
        """The input of the last forward pass."""
        return self._x

    @property
    def output(self):
        if self._y is None and getattr(self, "_x", None) is not None:
            self._y = self.activation.forward(self.backend, self._x)
        return self._y

    def backward(self, dy, need_input_grad=True):
        return self.activation.backward(self.backend, dy, self._x, self._y)

    def backward_from_logits(self, dz, need_input_grad=True):
        """The gradient with respect to the input is the given dL/dz."""
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: in training y = x * mask / (1 - rate), mask ~ Bernoulli(1 - rate); else y = x."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        self.rate = fraction("rate", rate)

    def attach(self, backend, dtype, parameters, gradients, device_generator):
        super().attach(backend, dtype, parameters, gradients, device_generator)
        self._generator = device_generator

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = self._generator.random(x.shape, dtype=x.dtype) >= self.rate
        self._mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * self._mask

    def backward(self, dy, need_input_grad=True):
        return dy if self._mask is None else dy * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout)}


def deserialize(config):
    """A layer from ``{"class_name": ..., "config": ...}``."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in LAYERS:
        raise ValueError(f"Unknown layer class {name!r}; valid classes are {', '.join(sorted(LAYERS))}.")
    options = dict(config.get("config", {}))
    for key in ("activation", "kernel_initializer", "bias_initializer"):
        if isinstance(options.get(key), dict):
            module = activations if key == "activation" else initializers
            options[key] = module.deserialize(options[key])
    return LAYERS[name](**options)


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
