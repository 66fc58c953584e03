"""The step plan: a model's layers placed once as nodes over its flat buffers, with the fusion
rules applied to neighbours, and the training step built from them.

Fusion rules (each can be turned off with ``fuse=False``; the numbers agree within rounding):

* folded bias: a Dense layer with a bias after a ReLU or linear Dense layer takes its input as
  ``[y, 1]`` from a block the producer writes, so the bias rides inside the product (one
  element-wise pass and one matrix-vector product fewer per layer and step);
* column-major logits: a last Dense layer of 2-32 units keeps its logits column-major where the
  backend reduces short rows slowly (NumPy: the softmax runs 1.2-3x faster);
* loss from logits: a softmax or sigmoid output with the matching cross-entropy is computed from
  the logits (stable for any logits, and no probabilities in training unless asked for);
* compiled kernels: bias + ReLU and ReLU backward in one pass each where the backend has kernels.

The seam for later work is ``gradient_reducers``: objects that see the flat gradient as backward
produces it (``after_node(plan, node)`` once a node's backprop has run: the gradients of that node
and of every node after it are final) and finish with it between backward and the update
(``finish(plan)``: the data-parallel all-reduce), with ``loss_share`` scaling the loss and its
gradient before backward (a rank's rows over the global batch's), ``penalty_in_loss`` (False on
all ranks but one) counting the regularizers' penalty once in the loss summed over the ranks, and
an empty batch (a rank's share of a short last batch) giving no loss and a zero gradient.
"""

from ..layers import Dense
from ._buffers import ParameterBuffer, StateBuffer, weight_order
from ._node import Link, Node

FORTRAN_MAX_UNITS = 32
"""An output layer with at most this many units keeps its logits column-major where the backend
asks for it (``narrow_columns_fortran``): the loss's row-wise softmax then runs 1.2-3x faster in
NumPy; from about 100 columns on, row-major is faster."""


class StepPlan:
    """Nodes over the flat ``parameters`` (trainable) and ``state`` buffers of ``layers``."""

    def __init__(self, layers, names, backend, dtype, rng, fuse=True):
        self.backend = backend
        self.dtype = dtype
        self.fuse = bool(fuse)
        self.parameters = ParameterBuffer(backend, dtype, layers)
        self.parameters.initialize(rng)
        self.state = StateBuffer(backend, dtype, layers)
        self.generator = backend.device_generator(int(rng.integers(2**63)))
        p, s = self.parameters, self.state
        self.nodes = [
            Node(layer, index, names[index], backend, dtype, p.layer_views(p.data, index),
                 p.layer_views(p.grad, index), s.layer_views(s.data, index),
                 p.layer_block(p.data, index), p.layer_block(p.grad, index), self.generator)
            for index, layer in enumerate(layers)]
        self.weight_order = weight_order(self.parameters, self.state, len(layers))
        trainable = [node.index for node in self.nodes if node.trainable]
        self.first_trainable = trainable[0] if trainable else len(self.nodes)
        for node in self.nodes:
            node.need_input_grad = node.index > self.first_trainable
            node.compiled_kernels = self.fuse
        if self.fuse:
            _column_major_logits(self.nodes[-1], backend)
            _fold_biases(self.nodes)
        for node in self.nodes:
            node.layer.prepare(node)
        self.regularized = [(node, name, rule) for node in self.nodes
                            for name, rule in getattr(node.layer, "regularized", list)()]
        self.gradient_reducers = []
        self.loss_share = 1.0
        self.penalty_in_loss = True
        self.loss = None
        self.fused_loss = False
        self._body = self.nodes[:-1]
        self._last = self.nodes[-1]
        self._backward_nodes = self.nodes[self.first_trainable:][::-1]
        self.backprops = [None] * len(self.nodes)
        self.outputs = [None] * len(self.nodes)
        self.logits = None

    def set_loss(self, loss):
        """Choose the loss; the loss-from-logits rule applies where it fuses with the output activation."""
        self.loss = loss
        last = self._last.layer
        self.fused_loss = self.fuse and last.activation is not None and loss.fuses_with(last.activation)

    # ----- forward, loss, backward ------------------------------------------------------------

    def forward(self, x, need_output=True):
        """The training forward pass; keeps each node's backprop and output for this step.
        With the loss from logits and ``need_output`` False, the probabilities are not computed
        (``output_of`` computes them when asked) and None is returned."""
        backprops, outputs = self.backprops, self.outputs
        for node in self._body:
            x, backprops[node.index] = node.layer.forward(node, x, True)
            outputs[node.index] = x
        last = self._last
        if self.fused_loss:
            self.logits, backprops[last.index] = last.layer.forward(last, x, True, activate=False)
            y = last.layer.activation.forward(self.backend, self.logits) if need_output else None
        else:
            y, backprops[last.index] = last.layer.forward(last, x, True)
        outputs[last.index] = y
        return y

    def infer(self, x):
        """(output, logits or None): the inference pass, touching no shared buffer, so calls from
        several threads do not interfere."""
        for node in self._body:
            x, _ = node.layer.forward(node, x, False)
        last = self._last
        if self.fused_loss:
            logits, _ = last.layer.forward(last, x, False, activate=False)
            return last.layer.activation.forward(self.backend, logits), logits
        return last.layer.forward(last, x, False)[0], None

    def output_of(self, index):
        """Node ``index``'s output in the last training forward pass."""
        if self.outputs[index] is None and index == self._last.index and self.logits is not None:
            self.outputs[index] = self._last.layer.activation.forward(self.backend, self.logits)
        return self.outputs[index]

    def loss_and_gradient(self, y, output, logits=None, sample_weight=None, reuse=False):
        """The batch loss (a device scalar) and the gradient backward starts from; ``reuse``
        (training) lets a fused loss keep its buffers from step to step."""
        if self.fused_loss:
            return self.loss.logits_value_and_grad(self.backend, y, logits, reuse=reuse, sample_weight=sample_weight)
        return self.loss.value_and_grad(self.backend, y, output, sample_weight=sample_weight)

    @property
    def backward_nodes(self):
        """The nodes backward runs, in its order: from the last down to the first trainable one."""
        return self._backward_nodes

    def backward(self, grad, reducers=()):
        """From dL/d(output), or dL/dlogits with the loss from logits, down to the first trainable
        layer; after each node's backprop, every reducer's ``after_node(self, node)``."""
        backprops = self.backprops
        for node in self._backward_nodes:
            grad = backprops[node.index](grad)
            for reducer in reducers:
                reducer.after_node(self, node)

    def penalty(self, with_gradient=False):
        """The regularizers' penalty (0.0 without any); with ``with_gradient`` also added to the gradients."""
        total = 0.0
        xp = self.backend.xp
        for node, name, rule in self.regularized:
            total = total + rule.penalty(xp, node.params[name])
            if with_gradient:
                rule.add_gradient(xp, node.params[name], node.grads[name])
        return total

    def train_step(self, optimizer, x, y, sample_weight=None, gradient_hook=None, need_output=True, step=0):
        """Forward, loss, backward, the gradient reducers, ``gradient_hook(step)``, one update.
        Returns the batch loss (a device scalar) and the output (see ``forward``)."""
        output = self.forward(x, need_output)
        if x.shape[0]:
            loss, grad = self.loss_and_gradient(y, output, self.logits, sample_weight, reuse=True)
        else:  # no rows (data-parallel): nothing to add, yet backward runs for its collectives
            loss, grad = 0.0, self.backend.xp.zeros_like(self.logits if self.fused_loss else output)
        if self.loss_share != 1.0:
            grad *= grad.dtype.type(self.loss_share)
            loss = loss * self.loss_share
        self.backward(grad, self.gradient_reducers)
        for reducer in self.gradient_reducers:
            reducer.finish(self)
        if self.regularized:
            penalty = self.penalty(with_gradient=True)
            if self.penalty_in_loss:
                loss = loss + penalty
        if gradient_hook is not None:
            gradient_hook(step)
        parameters = self.parameters
        optimizer.apply(parameters.data, parameters.grad, parameters.segments)
        return loss, output

    def matmul_products(self, rows):
        """(m, n, k) of each matrix product in one training step on ``rows`` samples."""
        products = []
        for node in self.nodes:
            products.extend(node.layer.matmul_products(rows, need_input_grad=node.need_input_grad))
        return products

    def check_input(self, x):
        for node in self.nodes:
            node.layer.check_input(self.backend, x)

    # ----- tensors ----------------------------------------------------------------------------

    def named_tensors(self):
        """[(``layer/tensor`` name, device view)] of every tensor in get_weights' order."""
        views = {id(self.parameters): self.parameters.tensors(self.parameters.data),
                 id(self.state): self.state.tensors(self.state.data)}
        return [(f"{self.nodes[buffer.entries[k].layer].name}/{buffer.entries[k].name}", views[id(buffer)][k])
                for buffer, k in self.weight_order]


def _column_major_logits(last, backend):
    layer = last.layer
    last.fortran = isinstance(layer, Dense) and backend.narrow_columns_fortran and 1 < layer.units <= FORTRAN_MAX_UNITS


def _fold_biases(nodes):
    for producer, consumer in zip(nodes, nodes[1:]):
        layer, before = consumer.layer, producer.layer
        if (isinstance(layer, Dense) and layer.use_bias and isinstance(before, Dense)
                and (before.relu or before.linear) and not producer.fortran):
            producer.ones_out = consumer.ones_in = Link()

