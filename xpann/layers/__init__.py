"""Layers: configuration and math. Each ``forward(node, x, training)`` returns its output and a
``backprop`` closure over what the backward pass needs; the tensors, buffers and fusion choices
live in the step plan's node (``xpann.plan``), so no layer reads another's state."""

from ._base import Layer, Workspace
from ._dense import Dense
from ._elementwise import Activation, Dropout
from ._embedding import CategoryEmbedding
from ._normalization import BatchNormalization, LayerNormalization
from .. import activations, initializers, regularizers

LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout, BatchNormalization, LayerNormalization,
                                        CategoryEmbedding)}

_NESTED = {"activation": activations, "kernel_initializer": initializers, "bias_initializer": initializers,
           "embeddings_initializer": initializers, "kernel_regularizer": regularizers}


def deserialize(config):
    """A layer from ``{"class_name": ..., "config": ...}``."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in LAYERS:
        raise ValueError(f"Unknown layer class {name!r}; valid classes are {', '.join(sorted(LAYERS))}.")
    options = dict(config.get("config", {}))
    for key, module in _NESTED.items():
        if isinstance(options.get(key), dict):
            options[key] = module.deserialize(options[key])
    return LAYERS[name](**options)


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


__all__ = ["Activation", "BatchNormalization", "CategoryEmbedding", "Dense", "Dropout", "Layer",
           "LayerNormalization", "Workspace", "deserialize", "serialize"]
