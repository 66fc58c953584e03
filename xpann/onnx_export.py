"""ONNX export: a Sequential as one float input ``x`` (N x features) and one output ``y`` equal to
``model.predict(x)``; a model with stored tabular preprocessing (``xpann train``'s files, a
TabularModel) as one input per raw column, ``[N, 1]`` (float for numbers, string for text and
dates), with outputs in user terms: ``label`` and ``probabilities``, or ``prediction`` in the
target's units. Built with the ``onnx`` package's helpers and checked with ``onnx.checker``.

Text cells: an empty string is a missing cell. Dates are read as ``YYYY-MM-DD``; a time of day
after the date (``T`` or a space) is ignored, where xpann adds it as a fraction of a day: such
cells differ by that fraction. An xpann.sklearn estimator exports as its inputs were given (an
array: ``x``; a DataFrame: a column each) with ``label``/``probabilities`` or ``prediction``.
Imported only by ``xpann.export_onnx``.
"""

import math
import os

import numpy

DEFAULT_OPSET = 20  # StringSplit (dates) needs 20; LayerNormalization 17
ML_OPSET = 3
MISSING_TEXT = ""


class _Graph:
    """Nodes, constants, inputs and outputs being collected, with fresh names."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, stem):
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, value, stem="c", dtype=numpy.float32):
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(numpy.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind, inputs, stem=None, domain="", **attributes):
        output = self.name(stem or kind.lower())
        self.nodes.append(self.helper.make_node(kind, list(inputs), [output], domain=domain, **attributes))
        return output

    def model(self, opset, doc):
        graph = self.helper.make_graph(self.nodes, "xpann", self.inputs, self.outputs, self.initializers)
        opsets = [self.helper.make_opsetid("", opset), self.helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
        model = self.helper.make_model(graph, opset_imports=opsets, producer_name="xpann", doc_string=doc)
        self.onnx.checker.check_model(model, full_check=True)
        return model


# ----- the network -----------------------------------------------------------------------------


def _activation(g, activation, z):
    name = activation.name
    if name == "linear":
        return z
    if name == "relu":
        return g.op("Relu", [z])
    if name == "sigmoid":
        return g.op("Sigmoid", [z])
    if name == "tanh":
        return g.op("Tanh", [z])
    if name == "softmax":
        return g.op("Softmax", [z], axis=-1)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [z], alpha=float(activation.negative_slope))
    if name == "elu":
        return g.op("Elu", [z], alpha=float(activation.alpha))
    if name == "selu":
        return g.op("Selu", [z], alpha=float(activation.alpha), gamma=float(activation.scale))
    if name == "softplus":
        return g.op("Softplus", [z])
    if name in ("swish", "silu"):
        return g.op("Mul", [z, g.op("Sigmoid", [z])])
    if name == "gelu":  # z * (1 + erf(z / sqrt 2)) / 2
        erf = g.op("Erf", [g.op("Mul", [z, g.constant(1 / math.sqrt(2))])])
        return g.op("Mul", [g.op("Mul", [z, g.constant(0.5)]), g.op("Add", [erf, g.constant(1.0)])])
    raise ValueError(f"The activation {name!r} cannot be exported to ONNX (no equivalent written yet).")


def _network(g, model, x):
    """The nodes computing ``model.predict`` from the float input ``x``; returns the output name."""
    from . import layers

    weights = model.named_weights()
    for layer, name in zip(model.layers, model.layer_names()):
        w = {key.split("/", 1)[1]: value for key, value in weights.items() if key.startswith(f"{name}/")}
        kind = type(layer).__name__
        if isinstance(layer, layers.Dense):
            x = g.op("MatMul", [x, g.constant(w["kernel"])])
            if layer.use_bias:
                x = g.op("Add", [x, g.constant(w["bias"])])
            x = _activation(g, layer.activation, x)
        elif isinstance(layer, layers.Activation):
            x = _activation(g, layer.activation, x)
        elif isinstance(layer, layers.Dropout):
            continue  # the identity at inference
        elif isinstance(layer, layers.BatchNormalization):
            xhat = g.op("Div", [g.op("Sub", [x, g.constant(w["moving_mean"])]),
                                g.constant(numpy.sqrt(w["moving_variance"] + layer.epsilon))])
            x = g.op("Add", [g.op("Mul", [xhat, g.constant(w["gamma"])]), g.constant(w["beta"])])
        elif isinstance(layer, layers.LayerNormalization):
            x = g.op("LayerNormalization", [x, g.constant(w["gamma"]), g.constant(w["beta"])], axis=-1,
                     epsilon=float(layer.epsilon))
        elif isinstance(layer, layers.CategoryEmbedding):
            parts = []
            if layer.numeric_columns:
                parts.append(g.op("Gather", [x, g.constant(layer.numeric_columns, dtype=numpy.int64)], axis=1))
            for i, column in enumerate(layer.columns):
                code = g.op("Cast", [g.op("Gather", [x, g.constant(column, dtype=numpy.int64)], axis=1)],
                            to=g.onnx.TensorProto.INT64)
                parts.append(g.op("Gather", [g.constant(w[f"embeddings_{i}"]), code], axis=0))
            x = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=1)
        else:
            raise ValueError(f"The layer {name!r} ({kind}) cannot be exported to ONNX (no equivalent written yet).")
    return x


# ----- the preprocessing ----------------------------------------------------------------------


def _numeric(g, x, spec):
    """z = (x, NaN filled with the training median - mean) / scale, as [N, 1] float, smoothly
    clipped (z / sqrt(1 + (z / clip)^2)) where the column has a clip; with a missing indicator,
    [N, 2]: that and 1 where x was NaN."""
    gaps = g.op("IsNaN", [x])
    filled = g.op("Where", [gaps, g.constant([[spec["fill"]]]), x])
    value = g.op("Div", [g.op("Sub", [filled, g.constant([[spec["mean"]]])]), g.constant([[spec["scale"]]])])
    if spec.get("clip"):  # in float32, so |z| is capped first: its square must not overflow
        bounded = g.op("Clip", [value, g.constant(-1e18), g.constant(1e18)])
        ratio = g.op("Div", [bounded, g.constant([[spec["clip"]]])])
        value = g.op("Div", [bounded, g.op("Sqrt", [g.op("Add", [g.constant([[1.0]]), g.op("Mul", [ratio, ratio])])])])
    if not spec.get("missing"):
        return value
    return g.op("Concat", [value, g.op("Cast", [gaps], to=g.onnx.TensorProto.FLOAT)], axis=1)


def _days(g, text):
    """Days since 1970-01-01 of "YYYY-MM-DD" strings [N, 1] (NaN where empty; a time after the date
    is ignored), as float [N, 1]: Howard Hinnant's days_from_civil in int64."""
    f32, i64 = g.onnx.TensorProto.FLOAT, g.onnx.TensorProto.INT64
    flat = g.op("Reshape", [text, g.constant([-1], dtype=numpy.int64)])
    empty = g.op("Equal", [flat, g.constant(numpy.array([MISSING_TEXT], dtype=object), dtype=object)])
    part = g.op("Where", [empty, g.constant(numpy.array(["1970-01-01"], dtype=object), dtype=object), flat])
    for delimiter in ("T", " ", "-"):
        pieces = g.name("split")
        g.nodes.append(g.helper.make_node("StringSplit", [part], [pieces, g.name("counts")], delimiter=delimiter,
                                          **({} if delimiter == "-" else {"maxsplit": 1})))
        part = pieces if delimiter == "-" else g.op("Gather", [pieces, g.constant(0, dtype=numpy.int64)], axis=1)
    fields = part

    def field(index):
        return g.op("Cast", [g.op("Cast", [g.op("Gather", [fields, g.constant(index, dtype=numpy.int64)], axis=1)],
                                  to=f32)], to=i64)

    y, m, d = field(0), field(1), field(2)
    two, nine, twelve = (g.constant(v, dtype=numpy.int64) for v in (2, 9, 12))
    early = g.op("Cast", [g.op("LessOrEqual", [m, two])], to=i64)  # Jan, Feb count in the year before
    y = g.op("Sub", [y, early])
    era = g.op("Div", [g.op("Sub", [y, g.op("Mul", [g.constant(399, dtype=numpy.int64),
                                                    g.op("Cast", [g.op("Less", [y, g.constant(0, dtype=numpy.int64)])],
                                                         to=i64)])]),
                       g.constant(400, dtype=numpy.int64)])
    yoe = g.op("Sub", [y, g.op("Mul", [era, g.constant(400, dtype=numpy.int64)])])
    mp = g.op("Mod", [g.op("Add", [m, nine]), twelve])
    doy = g.op("Add", [g.op("Div", [g.op("Add", [g.op("Mul", [g.constant(153, dtype=numpy.int64), mp]), two]),
                                    g.constant(5, dtype=numpy.int64)]),
                       g.op("Sub", [d, g.constant(1, dtype=numpy.int64)])])
    doe = g.op("Add", [g.op("Add", [g.op("Mul", [yoe, g.constant(365, dtype=numpy.int64)]),
                                    g.op("Div", [yoe, g.constant(4, dtype=numpy.int64)])]),
                       g.op("Sub", [doy, g.op("Div", [yoe, g.constant(100, dtype=numpy.int64)])])])
    days = g.op("Sub", [g.op("Add", [g.op("Mul", [era, g.constant(146097, dtype=numpy.int64)]), doe]),
                        g.constant(719468, dtype=numpy.int64)])
    days = g.op("Cast", [days], to=g.onnx.TensorProto.DOUBLE)
    nan = g.constant([numpy.nan], dtype=numpy.float64)
    days = g.op("Where", [empty, nan, days])
    return g.op("Cast", [g.op("Reshape", [days, g.constant([-1, 1], dtype=numpy.int64)])], to=f32)


def _label_codes(g, text, keys, values, default):
    """ai.onnx.ml LabelEncoder: each string of ``text`` [N, 1] to its int64 value (``default`` if absent)."""
    flat = g.op("Reshape", [text, g.constant([-1], dtype=numpy.int64)])
    return g.op("LabelEncoder", [flat], domain="ai.onnx.ml", keys_strings=list(keys),
                values_int64s=[int(v) for v in values], default_int64=int(default))


def _one_hot(g, text, spec):
    """Columns ``name=category`` (and ``name=(missing)`` where training had gaps): 1 where the
    cell is that category, all zeros for an unseen one. The index after the last column stands
    for unseen (OneHot would wrap a -1 round to the last category)."""
    categories = spec["categories"]
    k = len(categories) + bool(spec.get("missing"))  # the columns
    gap = len(categories) if spec.get("missing") else categories.index(spec["fill"])
    codes = _label_codes(g, text, list(categories) + [MISSING_TEXT], list(range(len(categories))) + [gap], k)
    hot = g.op("OneHot", [codes, g.constant(k + 1, dtype=numpy.int64), g.constant([0.0, 1.0])], axis=-1)
    return g.op("Slice", [hot, g.constant([0], dtype=numpy.int64), g.constant([k], dtype=numpy.int64),
                          g.constant([1], dtype=numpy.int64)])


def _coded(g, text, spec):
    """The coded column: 0 for a missing cell, 1 for an unknown category, 2 + i for categories[i]."""
    from .preprocessing._features import MISSING_CODE, UNKNOWN_CODE

    categories = spec["categories"]
    codes = _label_codes(g, text, list(categories) + [MISSING_TEXT],
                         [2 + i for i in range(len(categories))] + [MISSING_CODE], UNKNOWN_CODE)
    return g.op("Reshape", [g.op("Cast", [codes], to=g.onnx.TensorProto.FLOAT), g.constant([-1, 1], dtype=numpy.int64)])


def _features(g, preprocessor):
    """One graph input per column the preprocessing reads, and the float matrix it makes."""
    helper, tensor = g.helper, g.onnx.TensorProto
    parts = []
    for spec in preprocessor.columns:
        name, kind = str(spec["name"]), spec["kind"]
        numeric = kind == "numeric"
        g.inputs.append(helper.make_tensor_value_info(name, tensor.FLOAT if numeric else tensor.STRING, ["N", 1]))
        if numeric:
            parts.append(_numeric(g, name, spec))
        elif kind == "date":
            parts.append(_numeric(g, _days(g, name), spec))
        elif kind == "categorical":
            parts.append(_one_hot(g, name, spec))
        elif kind == "coded":
            parts.append(_coded(g, name, spec))
        else:
            raise ValueError(f"Column {name!r} of kind {kind!r} cannot be exported to ONNX.")
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=1)


def _labels(g, y, classes):
    """Outputs ``label`` (the class of the largest probability, as given) and ``probabilities``."""
    helper, tensor = g.helper, g.onnx.TensorProto
    index = g.op("ArgMax", [y], axis=1, keepdims=0)
    classes = numpy.asarray(classes)
    if classes.dtype.kind in "iub":
        g.nodes.append(helper.make_node("Gather", [g.constant(classes, dtype=numpy.int64), index], ["label"], axis=0))
        kind = tensor.INT64
    elif classes.dtype.kind == "f":
        g.nodes.append(helper.make_node("Gather", [g.constant(classes, dtype=numpy.float64), index], ["label"], axis=0))
        kind = tensor.DOUBLE
    else:
        labels = [str(label) for label in classes]
        g.nodes.append(helper.make_node("LabelEncoder", [index], ["label"], domain="ai.onnx.ml",
                                        keys_int64s=list(range(len(labels))), values_strings=labels,
                                        default_string=""))
        kind = tensor.STRING
    g.nodes.append(helper.make_node("Identity", [y], ["probabilities"]))
    g.outputs += [helper.make_tensor_value_info("label", kind, ["N"]),
                  helper.make_tensor_value_info("probabilities", tensor.FLOAT, ["N", len(classes)])]


def _values(g, y, mean, scale, flat):
    """Output ``prediction``: the network's standardised outputs in the target's units (float64)."""
    tensor = g.onnx.TensorProto
    value = g.op("Add", [g.op("Mul", [g.op("Cast", [y], to=tensor.DOUBLE), g.constant(scale, dtype=numpy.float64)]),
                         g.constant(mean, dtype=numpy.float64)])
    shape = [-1] if flat else [-1, len(numpy.atleast_1d(mean))]
    g.nodes.append(g.helper.make_node("Reshape", [value, g.constant(shape, dtype=numpy.int64)], ["prediction"]))
    g.outputs.append(g.helper.make_tensor_value_info("prediction", tensor.DOUBLE, ["N"] if flat else ["N", shape[1]]))


# ----- entry point ----------------------------------------------------------------------------


def _plain_output(g, y, model):
    g.nodes.append(g.helper.make_node("Identity", [y], ["y"]))
    g.outputs.append(g.helper.make_tensor_value_info("y", g.onnx.TensorProto.FLOAT, ["N", model.output_dim]))


def _parts(subject):
    """(Sequential, TabularPreprocessor or None, input scaling (mean, scale) or None, a function
    writing the outputs) of what is exported."""
    from . import preprocessing
    from .model import Sequential
    from .tabular import TabularModel

    def decoded(encoder):
        if encoder.task == "classification":
            return lambda g, y: _labels(g, y, encoder.classes)
        return lambda g, y: _values(g, y, [encoder.mean], [encoder.scale], flat=True)

    if isinstance(subject, TabularModel):
        if subject.model is None:
            raise ValueError("This TabularModel is not fitted yet; fit it before exporting it.")
        return subject.model, subject.preprocessor, None, decoded(subject.target_encoder)
    if isinstance(subject, Sequential):
        if not subject.built:
            raise ValueError("The model is not built yet (give it input_dim or fit it) and cannot be exported.")
        if (subject.metadata or {}).get(preprocessing._stored.METADATA_KEY) is not None:
            features, encoder, _ = preprocessing.from_model(subject)
            return subject, features, None, decoded(encoder)
        return subject, None, None, lambda g, y: _plain_output(g, y, subject)
    model = getattr(subject, "model_", None)
    if isinstance(model, Sequential):  # a fitted xpann.sklearn estimator
        tabular = getattr(subject, "_tabular", None)
        scaling = None if tabular is not None else (subject._mean, subject._scale)
        if hasattr(subject, "classes_"):
            return model, tabular, scaling, lambda g, y: _labels(g, y, subject.classes_)
        return model, tabular, scaling, lambda g, y: _values(g, y, subject._y_mean, subject._y_scale,
                                                             flat=subject._single_output)
    raise ValueError(f"export_onnx takes a Sequential, a TabularModel or a fitted xpann.sklearn estimator, "
                     f"got {type(subject).__name__}.")


def export_onnx(subject, path, opset=None):
    """Write ``subject`` (a Sequential, a TabularModel or a fitted xpann.sklearn estimator) to the
    ONNX file ``path``; returns the onnx ModelProto. ``opset`` defaults to 20."""
    try:
        import onnx
    except ImportError:
        raise ValueError("ONNX export needs the onnx package: pip install 'xpann[onnx]'.") from None
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < DEFAULT_OPSET:
        raise ValueError(f"opset must be a whole number >= {DEFAULT_OPSET} (StringSplit, LayerNormalization), "
                         f"got {opset!r}.")
    model, preprocessor, scaling, outputs = _parts(subject)
    if model.dtype != "float32":
        raise ValueError(f"Only float32 models are exported to ONNX; this one is {model.dtype}.")
    g = _Graph(onnx)
    if preprocessor is None:
        g.inputs.append(onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", model.input_dim]))
        x = "x"
        if scaling is not None:
            x = g.op("Div", [g.op("Sub", [x, g.constant(scaling[0])]), g.constant(scaling[1])])
    else:
        x = _features(g, preprocessor)
    outputs(g, _network(g, model, x))
    proto = g.model(opset, f"xpann model: {model.input_dim} network inputs, {model.output_dim} outputs")
    from .io import atomic_write

    with atomic_write(os.fspath(path)) as stream:
        stream.write(proto.SerializeToString())
    return proto
