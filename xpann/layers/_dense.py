"""Dense: y = activation(x @ kernel + bias), kernel (in, out), bias (out,)."""

from .. import activations, initializers, regularizers
from .._checks import positive_int
from ._base import Layer, Workspace


class Dense(Layer):
    """y = activation(x @ kernel + bias), kernel (in, out), bias (out,).

    In training the products land in the node's reused buffers. Two fusions are the planner's to
    switch on: ``node.ones_in`` (the producer's output sits in a block with a column of ones, so
    ``[x, 1] @ [kernel; bias]`` adds the bias inside the product and ``[x, 1].T @ dz`` gives both
    gradients in one product; the flat buffer holds the kernel rows, then the bias: an
    (in + 1, out) matrix) and ``node.ones_out`` (this layer's output gets such a column for the
    next Dense). ``node.fortran`` keeps few-unit logits column-major where the backend reduces
    short rows slowly.
    """

    def __init__(self, units, activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", use_bias=True, kernel_regularizer=None, name=None):
        super().__init__(name)
        self.units = positive_int("units", units)
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.use_bias = bool(use_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)

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

    def regularized(self):
        """(tensor name, regularizer) pairs whose penalty joins the loss."""
        return [] if self.kernel_regularizer is None else [("kernel", self.kernel_regularizer)]

    @property
    def relu(self):
        return type(self.activation) is activations.ReLU

    @property
    def linear(self):
        return type(self.activation) is activations.Linear

    def prepare(self, node):
        xp = node.xp
        node.kernel, node.kernel_grad = node.params["kernel"], node.grads["kernel"]
        node.bias = node.params.get("bias")
        node.bias_grad = node.grads.get("bias")
        relu = self.relu
        # max(z, zeros row) runs about 3x faster in NumPy than max(z, 0): a scalar operand takes
        # a slow loop there.
        node.zeros = xp.zeros(self.units, dtype=node.dtype) if relu else None
        # one-pass kernels (numba on the CPU, CuPy on a GPU) for bias + ReLU and ReLU backward;
        # bitwise the array code's results
        node.fused_relu = None
        if relu and node.compiled_kernels:
            kernels = tuple(node.backend.fused_kernel(name) for name in ("bias_relu", "relu", "relu_backward"))
            node.fused_relu = kernels if all(k is not None for k in kernels) else None
        node.kernel_bias = node.kernel_bias_grad = None
        if node.ones_in is not None:
            shape = (self.input_dim + 1, self.units)
            node.kernel_bias, node.kernel_bias_grad = node.param_block.reshape(shape), node.grad_block.reshape(shape)

    def matmul_products(self, rows, need_input_grad=True):
        products = [(rows, self.units, self.input_dim), (self.input_dim, self.units, rows)]
        if need_input_grad:
            products.append((rows, self.input_dim, self.units))
        return products

    def new_workspace(self, node, rows):
        xp, dtype, shape = node.xp, node.dtype, (rows, self.units)
        relu = self.relu
        space = Workspace(rows)
        space.z = xp.empty(shape, dtype=dtype)
        space.y = xp.empty(shape, dtype=dtype) if relu else None
        space.ones_block = None
        if node.ones_out is not None:  # the output (y for ReLU, z when linear) gets a column of ones
            space.ones_block = xp.empty((rows, self.units + 1), dtype=dtype)
            space.ones_block[:, self.units] = 1
            if relu:
                space.y = space.ones_block[:, :self.units]
            else:
                space.z = space.ones_block[:, :self.units]
        space.mask = xp.empty(shape, dtype=bool) if relu else None
        space.dz = xp.empty(shape, dtype=dtype) if relu else None
        space.ones = xp.ones(rows, dtype=dtype) if self.use_bias else None
        space.dx = None  # made at the first backward that needs the input gradient
        space.z_fortran = xp.empty(shape, dtype=dtype, order="F") if node.fortran else None
        space.dz_rows = xp.empty(shape, dtype=dtype) if node.fortran else None
        return space

    def forward(self, node, x, training, activate=True):
        """``activation(x @ kernel + bias)``, or the logits with ``activate=False`` (backprop then
        takes dL/dz)."""
        if not training:
            z = x @ node.kernel
            if self.use_bias:
                z += node.bias
            if node.fortran:
                z = node.xp.asfortranarray(z)
            return (self._activate(node, z, None) if activate else z), None
        space = node.workspace(x.shape[0])
        link = node.ones_in
        x_ones = link.block if link is not None and link.y is x else None
        gemm = node.backend.gemm
        if x_ones is not None:
            z = gemm(x_ones, node.kernel_bias, out=space.z)
        else:
            z = gemm(x, node.kernel, out=space.z)
        fused = node.fused_relu
        if fused is not None and activate and not node.fortran:
            # bias + ReLU in one pass. Where y is the first columns of the block with the ones
            # column, the kernel gets the whole (contiguous) block: a strided view would keep the
            # loop from vectorizing.
            target = space.y if space.ones_block is None else space.ones_block
            if self.use_bias and x_ones is None:
                fused[0](z, node.bias, target)
            else:
                fused[1](z, target)
            y = space.y
        else:
            if self.use_bias and x_ones is None:
                z += node.bias
            if node.fortran:
                node.xp.copyto(space.z_fortran, z)
                z = space.z_fortran
            y = self._activate(node, z, space) if activate else z
        if node.ones_out is not None:
            node.ones_out.y, node.ones_out.block = y, space.ones_block
        return y, self._backprop(node, space, x, x_ones, z, y, activate)

    def _activate(self, node, z, space):
        if self.linear:
            return z
        if node.zeros is not None:
            return node.xp.maximum(z, node.zeros, out=None if space is None else space.y)
        return self.activation.forward(node.backend, z)

    def _backprop(self, node, space, x, x_ones, z, y, activate):
        def backprop(dy):
            if not activate or self.linear:
                dz = dy
            elif node.zeros is not None:
                # dy * [y > 0]: the same values as where(y > 0, dy, 0) for finite dy, and 10-20x
                # faster in NumPy, whose where() branches per element.
                if node.fused_relu is not None and y is space.y:
                    dz = space.dz
                    node.fused_relu[2](dy, space.y if space.ones_block is None else space.ones_block, dz)
                else:
                    xp = node.xp
                    dz = xp.multiply(dy, xp.greater(y, 0, out=space.mask), out=space.dz)
            else:
                dz = self.activation.backward(node.backend, dy, z, y)
            return self._from_logits(node, space, x, x_ones, dz)

        return backprop

    def _from_logits(self, node, space, x, x_ones, dz):
        gemm = node.backend.gemm
        if node.fortran and not dz.flags.c_contiguous:
            # back to row-major: a column-major gradient slows the input-gradient product.
            node.xp.copyto(space.dz_rows, dz)
            dz = space.dz_rows
        if x_ones is not None:
            gemm(x_ones.T, dz, out=node.kernel_bias_grad)
        else:
            gemm(x.T, dz, out=node.kernel_grad)
            if self.use_bias:
                # ones @ dz: a matrix-vector product, 2-3x faster than dz.sum(axis=0) in NumPy.
                gemm(space.ones, dz, out=node.bias_grad)
        if not node.need_input_grad:
            return None
        if space.dx is None:
            space.dx = node.xp.empty((space.rows, self.input_dim), dtype=node.dtype)
        return gemm(dz, node.kernel.T, out=space.dx)

    def get_config(self):
        config = {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "use_bias": self.use_bias,
        }
        if self.kernel_regularizer is not None:
            config["kernel_regularizer"] = regularizers.serialize(self.kernel_regularizer)
        return config
