"""The options of a TabularModel (``xpann train``'s, by the same names): defaults and checks."""

import math
import numbers

from .. import activations, initializers, optimizers
from ..preprocessing._features import SCALINGS

TASKS = ("auto", "classification", "regression")
SCHEDULES = ("constant", "cosine")  # cosine: lr * (1 + cos(pi * step / steps)) / 2 over the planned steps
DEFAULTS = {"task": "auto", "drop": (), "keep": (), "categorical": (), "hidden": (64, 32), "activation": "relu", "init": "he_normal",
            "optimizer": "adam", "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 1e-4, "dropout": 0.1,
            "label_smoothing": 0.0, "scaling": "robust",
            "epochs": "auto", "batch_size": 32,
            "val_split": 0.2,
            "patience": None, "class_weight": None, "seed": 0, "backend": None, "verbose": 1}
DEFAULT_EPOCHS = 20
SMALL_DATA_STEPS = 500  # with epochs="auto", small data sets get epochs enough for this many steps...
MAX_DEFAULT_EPOCHS = 100  # ...but no more than this many epochs


def default_epochs(rows, batch_size):
    """20 epochs, or more for a small training set: enough for about 500 optimizer steps, at
    most 100 epochs (iris: 120 rows in batches of 32 is 4 steps an epoch, so 100 epochs)."""
    steps = math.ceil(rows / batch_size)
    return max(DEFAULT_EPOCHS, min(MAX_DEFAULT_EPOCHS, math.ceil(SMALL_DATA_STEPS / steps)))


def _whole(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def _fraction(name, value, zero="none"):
    """A float in [0, 1); a ValueError saying what 0 means otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a fraction in [0, 1) (0 for {zero}), got {value!r}.")
    return float(value)


def _names(name, value):
    """A tuple of column names; one name alone (a string) is a tuple of one."""
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a list of column names, got {value!r}.") from None
    return tuple(dict.fromkeys(names))


def _named(name, value, lookup):
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a name, got {value!r}.")
    lookup(value)  # a ValueError listing the valid names
    return value.strip().lower()


def checked(options):
    """``options`` with each value checked and normalised; a ValueError names the first bad one."""
    o = dict(options)
    if o["task"] not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {o['task']!r}.")
    o["drop"], o["keep"] = _names("drop", o["drop"]), _names("keep", o["keep"])
    o["categorical"] = _names("categorical", o["categorical"])
    both = [name for name in o["drop"] if name in o["keep"]]
    if both:
        raise ValueError(f"Column {both[0]!r} is given to both drop and keep; choose one.")
    hidden = (o["hidden"],) if isinstance(o["hidden"], numbers.Integral) else o["hidden"]
    try:
        o["hidden"] = tuple(_whole("each hidden width", width, 1) for width in hidden)
    except TypeError:
        raise ValueError(f"hidden must be a list of layer widths >= 1 (e.g. (64, 32)), got {o['hidden']!r}.") from None
    o["activation"] = _named("activation", o["activation"], activations.get)
    o["init"] = _named("init", o["init"], initializers.get)
    o["optimizer"] = _named("optimizer", o["optimizer"], optimizers.get)
    lr = o["lr"]
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0 (e.g. 0.001), got {lr!r}.")
    o["lr"] = float(lr)
    if o["lr_schedule"] not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {o['lr_schedule']!r}.")
    decay = o["weight_decay"]
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not (math.isfinite(decay) and decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0 (e.g. 1e-4), got {decay!r}.")
    o["weight_decay"] = float(decay)
    o["dropout"] = _fraction("dropout", o["dropout"])
    o["label_smoothing"] = _fraction("label_smoothing", o["label_smoothing"])
    if o["scaling"] not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {o['scaling']!r}.")
    if o["epochs"] not in ("auto", "cv"):
        if isinstance(o["epochs"], str):
            raise ValueError(f"epochs must be 'auto', 'cv' or a whole number >= 1, got {o['epochs']!r}.")
        o["epochs"] = _whole("epochs", o["epochs"], 1)
    o["batch_size"] = _whole("batch_size", o["batch_size"], 1)
    o["val_split"] = _fraction("val_split", o["val_split"], zero="no validation")
    if o["patience"] is not None:
        o["patience"] = _whole("patience", o["patience"], 0)
        if o["val_split"] == 0:
            raise ValueError("patience watches the validation loss; give val_split > 0.")
    weights = o["class_weight"]
    if not (weights is None or weights == "balanced" or isinstance(weights, dict)):
        raise ValueError(f"class_weight must be None, 'balanced' or a dict of class labels to weights, got {weights!r}.")
    o["seed"] = _whole("seed", o["seed"], 0)
    if o["verbose"] not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (a progress bar) or 2 (a line per epoch), got {o['verbose']!r}.")
    return o
