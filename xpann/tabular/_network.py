"""The network a TabularModel trains: a CategoryEmbedding for coded columns, hidden Dense layers, and
an output layer that fits the target (softmax over the classes, or one linear unit)."""

from .. import layers as layer_types
from ..model import Sequential

OUTPUT_INITIALIZER = "glorot_uniform"  # the Dense default, which the output layer keeps


def build_network(preprocessor, encoder, hidden, activation, init, seed, backend, dropout=0.0):
    """The Sequential for ``preprocessor``'s inputs and ``encoder``'s outputs, built and seeded;
    with ``dropout``, a Dropout layer after each hidden layer."""
    stack = []
    embeddings = preprocessor.embeddings
    if embeddings:
        positions, codes, widths = zip(*embeddings)
        stack.append(layer_types.CategoryEmbedding(list(positions), list(codes), list(widths)))
    for units in hidden:
        stack.append(layer_types.Dense(units, activation=activation, kernel_initializer=init))
        if dropout:
            stack.append(layer_types.Dropout(dropout))
    stack.append(layer_types.Dense(encoder.n_outputs, activation=encoder.output_activation))
    return Sequential(stack, input_dim=len(preprocessor.output_names), seed=seed, backend=backend)


def describe_network(model, preprocessor, encoder, hidden, activation, init, dropout=0.0):
    """ "9 -> 64 relu -> 32 relu -> 3 softmax (he_normal hidden, glorot_uniform output), 2,979 parameters"."""
    width = len(preprocessor.output_names)
    parts = [str(width)]
    embeddings = preprocessor.embeddings
    if embeddings:
        coded = ", ".join(f"{codes:,} codes x {size}" for _, codes, size in embeddings)
        parts.append(f"{width - len(embeddings) + sum(size for *_, size in embeddings)} (embeddings: {coded})")
    dropped = f" (dropout {dropout:g})" if dropout else ""
    parts += [f"{units} {activation}{dropped}" for units in hidden] + [f"{encoder.n_outputs} {encoder.output_activation}"]
    inits = f"{init} hidden, {OUTPUT_INITIALIZER} output" if hidden else OUTPUT_INITIALIZER
    return f"{' -> '.join(parts)} ({inits}), {model.count_params():,} parameters"
