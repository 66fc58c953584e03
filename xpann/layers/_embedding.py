"""CategoryEmbedding: integer-coded columns of a tabular input to learned embeddings."""

from .. import initializers
from .._checks import positive_int
from ._base import Layer, Workspace


class CategoryEmbedding(Layer):
    """A first layer for tabular inputs. Input columns ``columns`` hold integer codes
    ``0 .. input_dims[i] - 1`` (as numbers in the float matrix); the output is the other (numeric)
    columns in their order, then ``table_i[code]`` for each coded column in the order of
    ``columns``. Tables ``embeddings_i`` of shape (input_dims[i], output_dims[i]), N(0, 1) by
    default as torch.nn.Embedding. A code outside its range is a ValueError naming the column."""

    def __init__(self, columns, input_dims, output_dims, embeddings_initializer="normal", name=None):
        super().__init__(name)
        self.columns = _whole_numbers("columns", columns, minimum=0)
        self.input_dims = _whole_numbers("input_dims", input_dims, minimum=1)
        self.output_dims = _whole_numbers("output_dims", output_dims, minimum=1)
        if not self.columns:
            raise ValueError("CategoryEmbedding needs at least one coded column in columns.")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must not repeat a column, got {self.columns}.")
        if not len(self.columns) == len(self.input_dims) == len(self.output_dims):
            raise ValueError(f"columns, input_dims and output_dims need one entry per coded column, got "
                             f"{len(self.columns)}, {len(self.input_dims)} and {len(self.output_dims)}.")
        self.embeddings_initializer = initializers.get(embeddings_initializer)

    def build(self, input_dim):
        if max(self.columns) >= input_dim:
            raise ValueError(f"CategoryEmbedding: column {max(self.columns)} is not among the input's "
                             f"{input_dim} columns (0 .. {input_dim - 1}).")
        self.input_dim = input_dim
        coded = set(self.columns)
        self.numeric_columns = [c for c in range(input_dim) if c not in coded]
        self.output_dim = len(self.numeric_columns) + sum(self.output_dims)
        return self.output_dim

    def parameter_specs(self):
        return [(f"embeddings_{i}", (rows, width), self.embeddings_initializer, rows, width)
                for i, (rows, width) in enumerate(zip(self.input_dims, self.output_dims))]

    def prepare(self, node):
        xp = node.xp
        exact = 2 ** (24 if str(node.dtype) == "float32" else 53)  # whole numbers a float holds exactly
        if max(self.input_dims) > exact:
            raise ValueError(f"CategoryEmbedding: input_dims up to {exact:,} in {node.dtype}, whose codes are exact "
                             f"only that far, got {max(self.input_dims):,}; build the model with dtype='float64'.")
        node.numeric_index = xp.asarray(self.numeric_columns, dtype="int64")
        node.code_index = xp.asarray(self.columns, dtype="int64")
        node.code_limits = xp.asarray(self.input_dims, dtype=node.dtype)

    def check_input(self, backend, x):
        xp = backend.xp
        codes = xp.take(x, xp.asarray(self.columns, dtype="int64"), axis=1)
        limits = xp.asarray(self.input_dims, dtype=codes.dtype)
        bad = ((codes < 0) | (codes >= limits) | (codes != xp.floor(codes))).any(axis=0)
        bad = backend.to_numpy(bad)
        if bad.any():
            position = int(bad.argmax())
            column, values = self.columns[position], backend.to_numpy(codes[:, position])
            wrong = values[(values < 0) | (values >= self.input_dims[position]) | (values != values.round())]
            raise ValueError(f"CategoryEmbedding: input column {column} must hold whole-number codes 0 .. "
                             f"{self.input_dims[position] - 1}, got {float(wrong[0]):g}.")

    def new_workspace(self, node, rows):
        space = Workspace(rows)
        space.y = node.xp.empty((rows, self.output_dim), dtype=node.dtype)
        return space

    def forward(self, node, x, training):
        xp = node.xp
        codes = xp.take(x, node.code_index, axis=1).astype("int64")
        if training:
            y = node.workspace(x.shape[0]).y
        else:
            y = xp.empty((x.shape[0], self.output_dim), dtype=node.dtype)
        width = len(self.numeric_columns)
        if width:
            y[:, :width] = xp.take(x, node.numeric_index, axis=1)
        start = width
        slices = []
        for i, size in enumerate(self.output_dims):
            y[:, start:start + size] = xp.take(node.params[f"embeddings_{i}"], codes[:, i], axis=0)
            slices.append(slice(start, start + size))
            start += size
        if not training:
            return y, None

        def backprop(dy):
            for i, part in enumerate(slices):
                table_grad = node.grads[f"embeddings_{i}"]
                table_grad[...] = 0
                node.backend.add_rows(table_grad, codes[:, i], dy[:, part])
            if not node.need_input_grad:
                return None
            dx = xp.zeros(x.shape, dtype=dy.dtype)
            if width:
                dx[:, node.numeric_index] = dy[:, :width]
            return dx

        return y, backprop

    def get_config(self):
        return {**super().get_config(), "columns": list(self.columns), "input_dims": list(self.input_dims),
                "output_dims": list(self.output_dims),
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer)}


def _whole_numbers(name, values, minimum):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of whole numbers >= {minimum}, got {values!r}.")
    return [positive_int(name, value, minimum=minimum) for value in values]
