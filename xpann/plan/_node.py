"""A node of the step plan: one layer's place in one model."""


class Link:
    """What a producer node hands its consumer when the consumer's bias is folded into its
    product: the producer's last training output ``y`` and the block holding ``[y, 1]``."""

    def __init__(self):
        self.y = None
        self.block = None


class Node:
    """One layer in a model's step: the views of its tensors (``params``, ``grads``, ``state``) and
    their contiguous blocks, its training buffers per batch size (the two most recent sizes: a whole
    batch and the last, partial one), and the choices the planner made for it:

    * ``ones_in`` / ``ones_out``: Links of the folded-bias fusion (None when off);
    * ``fortran``: keep the output column-major (few-unit logits on a backend that asks for it);
    * ``compiled_kernels``: whether the layer may use the backend's compiled kernels;
    * ``need_input_grad``: whether backprop must return dL/dx (False for the first trainable layer);
    * ``reduce_statistics`` / ``reduce_sums``, ``batch_rows``: set in data-parallel training, so
      that batch statistics are those of the global batch and random draws are made for the global
      batch (``batch_rows`` = (this rank's first row, the global batch's rows)).

    Training buffers are reused from step to step; inference never touches them, so what predict
    and evaluate return never aliases memory a later call overwrites.
    """

    def __init__(self, layer, index, name, backend, dtype, params, grads, state, param_block, grad_block,
                 generator):
        self.layer, self.index, self.name = layer, index, name
        self.backend, self.xp, self.dtype = backend, backend.xp, dtype
        self.params, self.grads, self.state = params, grads, state
        self.param_block, self.grad_block = param_block, grad_block
        self.generator = generator
        self.ones_in = self.ones_out = None
        self.fortran = False
        self.compiled_kernels = True
        self.need_input_grad = True
        self.reduce_statistics = self.reduce_sums = None
        self.batch_rows = None
        self._spaces = {}
        self._space = None

    @property
    def trainable(self):
        return bool(self.params)

    def workspace(self, rows):
        """The layer's training buffers for batches of ``rows`` samples."""
        space = self._space
        if space is not None and space.rows == rows:
            return space
        space = self._spaces.get(rows)
        if space is None:
            if len(self._spaces) >= 2:
                del self._spaces[next(iter(self._spaces))]
            space = self._spaces[rows] = self.layer.new_workspace(self, rows)
        self._space = space
        return space

    def forget_workspaces(self):
        self._spaces, self._space = {}, None
