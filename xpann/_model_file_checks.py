"""The sizes a model file's config may ask for, checked before ``load_model`` allocates anything, so
that a small hostile file can make it neither allocate gigabytes nor build for minutes."""

import math

from ._checks import positive_int

MAX_LAYERS = 1024
"""The most layers a loaded model may have."""
MAX_WIDTH = 2**20
"""The most features a loaded model may take (input_dim) or a layer may give."""
MAX_VALUES = 2**28
"""The most tensor values (trainable and state) a loaded model may hold in all: 1 GiB as float32."""


def check_model_config(spec):
    """The input_dim of the model config ``spec`` once it lists at most MAX_LAYERS layers and takes
    at most MAX_WIDTH features; ValueError otherwise."""
    layers = spec["layers"]
    if not isinstance(layers, list):
        raise ValueError(f"the model config's layers must be a list, got {type(layers).__name__}.")
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"the model has {len(layers)} layers; xpann loads models of at most {MAX_LAYERS}.")
    input_dim = positive_int("input_dim", spec["input_dim"])
    if input_dim > MAX_WIDTH:
        raise ValueError(f"input_dim is {input_dim}; xpann loads models of at most {MAX_WIDTH} input features.")
    return input_dim


def planned_tensors(layers, names, input_dim):
    """``{"layer/tensor": shape}`` of every tensor that ``layers`` (named ``names``) hold once built
    for ``input_dim`` features, in get_weights' order, found without allocating them; ValueError
    where a layer gives more than MAX_WIDTH features or the tensors pass MAX_VALUES values."""
    shapes, values, width = {}, 0, input_dim
    for name, layer in zip(names, layers):
        width = layer.build(width)
        if width > MAX_WIDTH:
            raise ValueError(f"layer {name!r} gives {width} features; xpann loads layers of at most {MAX_WIDTH}.")
        for spec in layer.parameter_specs() + layer.state_specs():
            shapes[f"{name}/{spec[0]}"] = tuple(spec[1])
            values += math.prod(spec[1])
        if values > MAX_VALUES:
            raise ValueError(f"the layers up to {name!r} hold {values} tensor values, more than the {MAX_VALUES} "
                             f"xpann loads.")
    return shapes
