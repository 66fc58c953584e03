"""Why a network does not learn: per-layer gradient health, the rules that turn it into
warnings, and a finite-difference check of the analytic gradients.

- ``GradientCollector`` sums per-layer gradient norms, weight norms, the update-to-weight ratio
  and unit activity on the device during ``fit`` and reads them to the host once per record.
  ``xpann.callbacks.GradientMonitor`` drives it; ``fit`` runs a light one by default.
- ``find_problems`` applies the health rules to one record; ``HealthRules`` remembers what was
  already said and issues each finding once per model as a ``TrainingHealthWarning``.
- ``gradient_check(model, x, y)`` compares the model's analytic gradients with central finite
  differences in float64 and returns the worst relative error per layer.

The rules (thresholds are module constants):

- vanishing: the first layer's gradient norm is below ``VANISHING_RATIO`` (1e-3) of the last's;
- exploding: a gradient norm is not finite, or the global norm rose ``EXPLODING_RISE`` (1e3)
  times above its first recorded value;
- dead: more than ``MOSTLY`` (half) of a ReLU-family layer's units never fired (output <= 0 for
  every sample seen);
- saturated: on average over the samples seen, more than half of a hidden sigmoid/tanh layer's
  outputs lie within ``SATURATION_TOLERANCE`` (1e-3) of the activation's bounds.
"""

import copy
import json
import math
import os
import random
import sys
import warnings
import weakref

from . import layers as layers_module
from .errors import TrainingHealthWarning

VANISHING_RATIO = 1e-3
EXPLODING_RISE = 1e3
MOSTLY = 0.5
SATURATION_TOLERANCE = 1e-3
SAMPLE_ROWS = 64
"""In sample mode, unit activity is gathered over the first batches until this many rows."""

DEAD_FAMILY = ("relu", "leaky_relu", "elu", "selu")
"""Activations whose output is positive exactly where the unit is active (pre-activation > 0)."""
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
"""Activations with bounds, and the bounds."""

FIXES = {
    "vanishing": "use ReLU or leaky ReLU with He initialisation (kernel_initializer='he_normal') "
                 "instead of sigmoid, or a shallower network (and standardise the inputs)",
    "exploding": "lower the learning rate, clip the gradients (clipnorm=1.0 or global_clipnorm=1.0 "
                 "on the optimizer) or use a smaller initialisation (he_normal or glorot_uniform)",
    "dead": "use leaky_relu, He initialisation (he_normal), a lower learning rate, and check for "
            "large negative biases",
    "saturated": "use Glorot initialisation (glorot_uniform) or a smaller init scale, standardise the "
                 "inputs, or use ReLU/leaky ReLU in hidden layers",
}


# ----- what is measured --------------------------------------------------------------------------


class _Probe:
    """One trainable layer: its name, its tensors' indices, and where its activation shows."""

    def __init__(self, name, tensors, activation, source, last):
        self.name = name
        self.tensors = tensors  # indices into parameters.entries, kernel first
        self.activation = activation
        self.source = source  # the index of the node whose output holds the activation's values
        self.last = last
        self.kind = "dead" if activation in DEAD_FAMILY else "saturated" if activation in SATURATING else None
        self.bounds = SATURATING.get(activation)


def _probes(model):
    """A _Probe per layer that has parameters, in order. A layer without its own activation
    (Dense(..., activation=None)) is judged by the activation after it, looking through layers
    that keep units apart (Dropout, the normalizations)."""
    parameters = model.parameters
    names = model.layer_names()
    by_layer = {}
    for position, entry in enumerate(parameters.entries):
        by_layer.setdefault(entry.layer, []).append(position)
    trainable = sorted(by_layer)
    probes = []
    for index in trainable:
        layer = model.layers[index]
        source = index
        activation = getattr(layer.activation, "name", "linear")
        if activation == "linear":
            for position in range(index + 1, len(model.layers)):
                following = model.layers[position]
                if not following.keeps_units:
                    break
                if following.activation is not None and following.activation.name != "linear":
                    source, activation = position, following.activation.name
                    break
        probes.append(_Probe(names[index], by_layer[index], activation, source, index == trainable[-1]))
    return probes


class GradientCollector:
    """Device-side sums of per-tensor squared gradient norms, of unit activity (ReLU family) and
    of saturated outputs (sigmoid, tanh) over a window of training steps; ``read()`` brings
    everything to the host in one transfer.

    Call ``start()`` at a window's start, ``gradients(first)`` after each backward (before the
    optimizer step), ``settle()`` once the step that followed is done (at the next batch or at the
    window's end: it measures the first step's update), and ``read()`` at the window's end.
    With ``sample=True`` the gradient norm is that of the window's first batch only, and unit
    activity is gathered over the first batches until ``SAMPLE_ROWS`` rows were seen: the
    cost is a few reductions per window, not per step.
    """

    def __init__(self, model, sample=False):
        self.model = model
        self.sample = bool(sample)
        self.parameters = model.parameters
        self.xp = model.backend.xp
        self.probes = _probes(model)
        self.tracked = [probe for probe in self.probes if probe.kind is not None]
        self.start()

    def start(self):
        self._grad_sq = None
        self._grad_steps = 0
        self._rows = 0
        self._active = [None] * len(self.tracked)
        self._snapshot = None
        self._update_sq = None
        self._before_sq = None

    def _squared_norms(self, flat):
        """A device vector: the squared norm of each tensor of the flat buffer ``flat``."""
        xp = self.xp
        parts = [flat[segment] for segment in self.parameters.segments]
        return xp.stack([xp.dot(part, part) for part in parts])

    def gradients(self, first):
        """Add this batch: gradients are in ``parameters.grad``, outputs in the step plan's record."""
        xp = self.xp
        plan = self.model.plan
        if not (self.sample and self._grad_steps):
            squares = self._squared_norms(self.parameters.grad)
            self._grad_sq = squares if self._grad_sq is None else self._grad_sq + squares
            self._grad_steps += 1
        if self.tracked and not (self.sample and self._rows >= SAMPLE_ROWS):
            for position, probe in enumerate(self.tracked):
                y = plan.output_of(probe.source)
                if probe.kind == "dead":
                    value = (y > 0).any(axis=0)
                    seen = self._active[position]
                    self._active[position] = value if seen is None else xp.logical_or(seen, value)
                else:
                    low, high = probe.bounds
                    value = ((y <= low + SATURATION_TOLERANCE) | (y >= high - SATURATION_TOLERANCE)).sum(
                        dtype="float64") / y.shape[1]
                    seen = self._active[position]
                    self._active[position] = value if seen is None else seen + value
            self._rows += int(plan.output_of(self.tracked[0].source).shape[0])
        if first and self._snapshot is None and self._update_sq is None:
            self._snapshot = self.parameters.data.copy()

    @property
    def complete(self):
        """In sample mode: True once the window's sample is taken and nothing more is needed."""
        return self.sample and self._grad_steps > 0 and self._snapshot is None \
            and (not self.tracked or self._rows >= SAMPLE_ROWS)

    def settle(self):
        """After an optimizer step: the window's first update, per tensor, from the snapshot."""
        if self._snapshot is not None:
            self._update_sq = self._squared_norms(self.parameters.data - self._snapshot)
            self._before_sq = self._squared_norms(self._snapshot)
            self._snapshot = None

    def read(self):
        """The window's record (without epoch and step) as plain host numbers."""
        xp = self.xp
        count = len(self.parameters.entries)
        nan = xp.full(count, float("nan"), dtype="float64")
        grad_sq = nan if self._grad_sq is None else self._grad_sq.astype("float64") / self._grad_steps
        update_sq = nan if self._update_sq is None else self._update_sq.astype("float64")
        before_sq = nan if self._before_sq is None else self._before_sq.astype("float64")
        weight_sq = self._squared_norms(self.parameters.data).astype("float64")
        inactive = []
        for probe, active in zip(self.tracked, self._active):
            if active is None:
                inactive.append(nan[:1])
            elif probe.kind == "dead":
                inactive.append((1.0 - active.mean(dtype="float64")).reshape(1))
            else:
                inactive.append((active / self._rows).reshape(1))
        values = self.model.backend.to_numpy(
            xp.concatenate([grad_sq, weight_sq, update_sq, before_sq, *inactive])).tolist()
        grad_sq, weight_sq = values[:count], values[count:2 * count]
        update_sq, before_sq = values[2 * count:3 * count], values[3 * count:4 * count]
        fractions = dict(zip((probe.name for probe in self.tracked), values[4 * count:]))
        layers = []
        for probe in self.probes:
            kernel = probe.tensors[0]

            def norm(squares, tensors=probe.tensors):
                return _sqrt(sum(squares[t] for t in tensors))

            fraction = fractions.get(probe.name)
            before = norm(before_sq)
            layers.append({
                "name": probe.name,
                "activation": probe.activation,
                "grad_norm": norm(grad_sq),
                "kernel_grad_norm": _sqrt(grad_sq[kernel]),
                "bias_grad_norm": norm(grad_sq, probe.tensors[1:]) if len(probe.tensors) > 1 else None,
                "weight_norm": norm(weight_sq),
                "update_ratio": norm(update_sq) / before if before and math.isfinite(before) else None,
                "dead_fraction": fraction if probe.kind == "dead" else None,
                "saturated_fraction": fraction if probe.kind == "saturated" else None,
            })
        global_norm = _sqrt(sum(grad_sq))
        self.start()
        return {"global_grad_norm": global_norm, "layers": layers}


def _sqrt(value):
    if value is None or math.isnan(value):
        return float("nan")
    return math.sqrt(value) if value >= 0 else float("nan")


# ----- the health rules --------------------------------------------------------------------------


def _finite(value):
    return value is not None and math.isfinite(value)


def find_problems(record, baseline_norm=None):
    """The health findings of one record: a list of ``(kind, layer name, message)``, kind one of
    "vanishing", "exploding", "dead", "saturated". ``baseline_norm`` is the global gradient norm
    of the first record, against which a rise is measured."""
    layers = record["layers"]
    where = _when(record)
    problems = []
    broken = [layer for layer in layers if not _finite(layer["grad_norm"])]
    if broken:
        layer = broken[0]
        problems.append(("exploding", layer["name"],
                         f"Exploding gradients: the gradient norm of layer '{layer['name']}' is "
                         f"{layer['grad_norm']} {where}; {FIXES['exploding']}."))
    else:
        global_norm = record.get("global_grad_norm")
        if _finite(baseline_norm) and baseline_norm > 0 and _finite(global_norm) \
                and global_norm > EXPLODING_RISE * baseline_norm:
            largest = max(layers, key=lambda layer: layer["grad_norm"])
            problems.append(("exploding", largest["name"],
                             f"Exploding gradients: the global gradient norm rose from {baseline_norm:.2e} "
                             f"to {global_norm:.2e} (x{global_norm / baseline_norm:.1e}) {where}, largest in "
                             f"layer '{largest['name']}'; {FIXES['exploding']}."))
        mostly_dead = any(_finite(layer.get("dead_fraction")) and layer["dead_fraction"] > MOSTLY for layer in layers)
        if len(layers) >= 2 and not mostly_dead:  # dead units explain a missing gradient better
            first, last = layers[0], layers[-1]
            if last["grad_norm"] > 0 and first["grad_norm"] < VANISHING_RATIO * last["grad_norm"]:
                ratio = first["grad_norm"] / last["grad_norm"]
                problems.append(("vanishing", first["name"],
                                 f"Vanishing gradients: the first layer '{first['name']}' gets a gradient "
                                 f"norm {ratio:.1e} times that of the last layer '{last['name']}' {where}; "
                                 f"{FIXES['vanishing']}."))
    for layer in layers:
        dead = layer.get("dead_fraction")
        if _finite(dead) and dead > MOSTLY:
            problems.append(("dead", layer["name"],
                             f"Dead units: {dead:.0%} of the {layer['activation']} units of layer "
                             f"'{layer['name']}' never fired {where}; {FIXES['dead']}."))
        saturated = layer.get("saturated_fraction")
        if layer is not layers[-1] and _finite(saturated) and saturated > MOSTLY:
            problems.append(("saturated", layer["name"],
                             f"Saturated units: {saturated:.0%} of the {layer['activation']} outputs of layer "
                             f"'{layer['name']}' lie within {SATURATION_TOLERANCE:g} of their bounds {where}, "
                             f"where the gradient is almost zero; {FIXES['saturated']}."))
    return problems


def _when(record):
    epoch = record.get("epoch")
    return f"in epoch {epoch + 1}" if epoch is not None else "at this point"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ISSUED = weakref.WeakKeyDictionary()  # model -> {(kind, layer)} already warned about


class HealthRules:
    """Applies ``find_problems`` to successive records of one model and warns about each
    (kind, layer) once per model, as a one-line ``TrainingHealthWarning``."""

    def __init__(self, model):
        self.model = model
        self.baseline_norm = None

    def check(self, record, loss=None, warn=True):
        """All findings of ``record``; those new for this model are warned about unless ``warn``
        is False. A non-finite ``loss`` is left to TerminateOnNaN, which already says it."""
        global_norm = record.get("global_grad_norm")
        if self.baseline_norm is None and _finite(global_norm) and global_norm > 0:
            self.baseline_norm = global_norm
        if loss is not None and not math.isfinite(loss):
            return []
        problems = find_problems(record, self.baseline_norm)
        if warn:
            try:
                issued = _ISSUED.setdefault(self.model, set())
            except TypeError:  # a model that cannot be weakly referenced: remember here
                issued = self.__dict__.setdefault("_issued", set())
            for kind, layer, message in problems:
                if (kind, layer) not in issued:
                    issued.add((kind, layer))
                    warnings.warn(message, TrainingHealthWarning, stacklevel=_caller_level())
        return problems


def _caller_level():
    """The ``stacklevel`` that points a warning issued by our caller at the first frame outside
    xpann: the user's ``fit`` call."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def records_to_json(records, path=None, indent=None):
    """The records as JSON text (non-finite numbers become null); written to ``path`` if given."""
    text = json.dumps(_plain(records), indent=indent, allow_nan=False)
    if path is not None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return text


def _plain(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# ----- gradient check ----------------------------------------------------------------------------


def gradient_check(model, x, y, epsilon=1e-5, max_entries=32, seed=0, atol=1e-6):
    """The worst relative error per layer between the model's analytic gradients and central
    finite differences, ``{layer name: error}``, both computed in float64.

    The check runs on a float64 copy of the model (same layers, weights and loss; dropout off),
    so the model itself is not touched. For each weight tensor up to ``max_entries`` entries
    (chosen at random with ``seed``; all of them for smaller tensors) are perturbed by
    ``+-epsilon`` and the loss on the whole (x, y) is differenced. The relative error of an entry
    is ``|analytic - numeric| / max(|analytic|, |numeric|, atol)``: below about 1e-4 the
    gradients agree (typically 1e-7); near 1 one of them is wrong. The model must be compiled.

    Finite differences cannot see a kink: where a ReLU-family pre-activation sits exactly at 0
    (say, a sample for which every unit of the layer before is off, and a zero bias), they measure
    the average of the two slopes, and the check reports a large error there for a correct model.
    """
    if model.loss is None:
        raise ValueError("gradient_check needs a compiled model; call compile(optimizer=..., loss=...) first.")
    if not model.built:
        model.build(x.shape[1] if hasattr(x, "shape") else len(x[0]))
    max_entries = int(max_entries)
    if max_entries < 1:
        raise ValueError(f"max_entries must be a whole number >= 1, got {max_entries!r}.")
    layers = [copy.copy(layer) for layer in model.layers]
    for layer in layers:
        layer.model = None  # the copy belongs to the float64 model below
        if isinstance(layer, layers_module.Dropout):
            layer.rate = 0.0
    check = type(model)(layers, input_dim=model.input_dim, seed=0, backend=model.backend.name, dtype="float64",
                       name=f"{model.name}_float64")
    check.compile(optimizer="sgd", loss=model.loss)
    check.set_weights(model.get_weights())
    backend = check.backend
    x_device = backend.asarray(x, dtype="float64")
    _, analytic = check.compute_gradients(x_device, y)

    def loss():  # in training mode, as the gradients are (batch statistics; dropout is off)
        return check.compute_gradients(x_device, y)[0]

    data = check.parameters.data
    names = check.layer_names()
    chooser = random.Random(seed)
    worst = {}
    for tensor, (segment, entry) in enumerate(zip(check.parameters.segments, check.parameters.entries)):
        size = segment.stop - segment.start
        positions = range(size) if size <= max_entries else sorted(chooser.sample(range(size), max_entries))
        flat_analytic = analytic[tensor].reshape(-1)
        name = names[entry[0]]
        for position in positions:
            index = segment.start + position
            original = float(data[index])
            data[index] = original + epsilon
            plus = loss()
            data[index] = original - epsilon
            minus = loss()
            data[index] = original
            numeric = (plus - minus) / (2 * epsilon)
            exact = float(flat_analytic[position])
            scale = max(abs(exact), abs(numeric), atol)
            error = abs(exact - numeric) / scale if math.isfinite(numeric) and math.isfinite(exact) else math.inf
            worst[name] = max(worst.get(name, 0.0), error)
    return worst


__all__ = [
    "EXPLODING_RISE",
    "MOSTLY",
    "SATURATION_TOLERANCE",
    "VANISHING_RATIO",
    "GradientCollector",
    "HealthRules",
    "TrainingHealthWarning",
    "find_problems",
    "gradient_check",
    "records_to_json",
]
