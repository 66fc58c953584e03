"""``xpann diagnose``: train a deep MLP briefly and watch its gradients, layer by layer, to see
why it learns or not: vanishing and exploding gradients, dead and saturated units."""

import math
import os
import warnings

import click

import xpann
from xpann import preprocessing, tabular
from xpann.callbacks import GradientMonitor
from xpann.errors import TrainingHealthWarning

from . import data, diagnose_plot, diagnose_report, options, report

DEFAULT_DATASET = "breast_cancer"
LEARNS_BELOW = 0.8
"""A set-up learns when its last training loss is below this fraction of a constant guess's."""

COMPARE = (
    ("sigmoid", "glorot_uniform", 1.0),   # the library default init: still vanishes with sigmoid
    ("tanh", "glorot_uniform", 1.0),
    ("relu", "he_normal", 1.0),
    ("leaky_relu", "he_normal", 1.0),
    ("relu", "he_normal", 2.0),           # weights twice too large: x2 per layer compounds
)
SHORT_INIT = {"glorot_uniform": "glorot", "glorot_normal": "glorot_n", "he_normal": "he", "he_uniform": "he_u",
              "lecun_normal": "lecun", "lecun_uniform": "lecun_u"}


class Setup:
    """One network configuration: hidden activation, kernel initialiser and a factor on its spread."""

    def __init__(self, activation, init, scale=1.0):
        self.activation = activation
        self.init = init
        self.scale = float(scale)

    @property
    def label(self):
        scale = "" if self.scale == 1 else f" x{self.scale:g}"
        return f"{self.activation}/{SHORT_INIT.get(self.init, self.init)}{scale}"

    @property
    def description(self):
        scale = "" if self.scale == 1 else f", weights x{self.scale:g}"
        return f"{self.activation} + {self.init}{scale}"

    def initializer(self):
        return scaled_initializer(self.init, self.scale)


def scaled_initializer(name, scale):
    """The initialiser ``name`` with its standard deviation multiplied by ``scale``."""
    base = xpann.initializers.get(name)
    if scale == 1:
        return base
    inits = xpann.initializers
    if isinstance(base, inits.VarianceScaling):
        return inits.VarianceScaling(scale=base.scale * scale ** 2, mode=base.mode, distribution=base.distribution)
    if isinstance(base, inits.RandomNormal):
        return inits.RandomNormal(mean=base.mean, stddev=base.stddev * scale)
    if isinstance(base, inits.RandomUniform):
        return inits.RandomUniform(minval=base.minval * scale, maxval=base.maxval * scale)
    raise ValueError(f"--init-scale needs a random initialiser (glorot_*, he_*, lecun_*, uniform, random_normal); "
                     f"{name!r} is not one.")


def _setup(ctx, param, values):
    setups = []
    for value in values:
        parts = value.split(":")
        try:
            scale = float(parts[2]) if len(parts) == 3 else 1.0
            if len(parts) not in (2, 3) or not (scale > 0 and math.isfinite(scale)):
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{value!r} is not ACTIVATION:INIT[:SCALE] (e.g. relu:he_normal:2).") from None
        setup = Setup(parts[0].strip().lower(), parts[1].strip().lower(), scale)
        try:
            xpann.activations.get(setup.activation)
            setup.initializer()
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        setups.append(setup)
    return setups


@click.command()
@click.argument("data_file", metavar="[DATA.csv]", required=False)
@click.option("--target", "-t", metavar="COLUMN", help="The column to predict in DATA.csv.")
@click.option("--dataset", metavar="NAME",
              help=f"A bundled data set (breast_cancer, diabetes, iris, wine) [default: {DEFAULT_DATASET}].")
@click.option("--depth", type=click.IntRange(min=1), default=10, show_default=True, help="Hidden layers.")
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True, help="Units per hidden layer.")
@click.option("--activation", default="sigmoid", show_default=True,
              callback=options.checked_name(xpann.activations.get), help="Hidden-layer activation.")
@click.option("--init", "init", default="glorot_uniform", show_default=True,
              callback=options.checked_name(xpann.initializers.get),
              help="Kernel initialiser of every layer.")
@click.option("--init-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Multiply the initial weights' spread by this factor (2: twice too large).")
@click.option("--optimizer", default="sgd", show_default=True,
              callback=options.checked_name(xpann.optimizers.get), help="Optimizer name.")
@click.option("--lr", type=float, default=0.01, show_default=True, callback=options.learning_rate,
              help="Learning rate.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--compare", is_flag=True,
              help="Run several set-ups side by side: sigmoid + default init, tanh + Glorot, ReLU + He, "
                   "leaky ReLU + He, and ReLU + He with weights twice too large.")
@click.option("--setup", "setups", multiple=True, metavar="ACT:INIT[:SCALE]", callback=_setup,
              help="With --compare: a set-up to run instead of the default ones (repeatable).")
@click.option("--plot", metavar="FILE.png", help="Draw per-layer gradient norms against epoch (needs xpann[plot]).")
@click.option("--json", "json_path", metavar="FILE", help="Write the per-layer records as JSON.")
@options.backend
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def diagnose(data_file, target, dataset, depth, width, activation, init, init_scale, optimizer, lr, epochs,
             batch_size, compare, setups, plot, json_path, backend, seed):
    """Train a deep MLP briefly and print, layer by layer, its gradient norms and its dead and
    saturated units over time, to see why a network does or does not learn.

    The defaults build the classic failure (10 sigmoid layers, plain SGD); change --activation,
    --init or --init-scale to try the fixes, or use --compare to see them side by side.
    """
    if setups and not compare:
        raise click.UsageError("--setup chooses the set-ups of --compare; add --compare.")
    backend = xpann.backend.resolve_backend(backend)
    pyplot = options.plotting(plot) if plot else None
    x, y, encoder, source = _load(data_file, dataset, target, json_path)
    if compare:
        chosen = list(setups) or [Setup(*fields) for fields in COMPARE]
    else:
        chosen = [Setup(activation, init, init_scale)]
    if not compare:
        chosen[0].initializer()  # a bad --init-scale fails before training
    steps = math.ceil(len(x) / min(batch_size, len(x)))
    click.echo(f"Data: {source}: {len(x):,} rows, {x.shape[1]} inputs, {encoder.task}"
               + (f" of {len(encoder.classes)} classes." if encoder.task == "classification" else "."))
    click.echo(f"Network: {x.shape[1]} -> {depth} x {width} hidden -> {encoder.n_outputs} "
               f"{encoder.output_activation}; {optimizer} lr {lr:g}, batch {batch_size:,} ({steps:,} steps an epoch), "
               f"{report.count(epochs, 'epoch')}, seed {seed}, {backend.describe()}.")
    baseline = _constant_guess_loss(y, encoder)
    results = [_train(setup, x, y, encoder, depth, width, optimizer, lr, epochs, batch_size, seed, backend, baseline)
               for setup in chosen]
    click.echo("")
    if compare:
        diagnose_report.print_comparison(results, baseline)
    else:
        diagnose_report.print_single(results[0], baseline)
    if json_path:
        diagnose_report.write_json(json_path, results, source, depth, width, optimizer, lr, epochs, batch_size, seed, baseline)
        click.echo(f"Wrote the records to {json_path}.")
    if plot:
        diagnose_plot.plot(pyplot, results, plot, steps)
        click.echo(f"Saved the gradient-norm plot to {plot}.")


# ----- data and training ---------------------------------------------------------------------


def _load(data_file, dataset, target, json_path):
    """(x float32, y, TargetEncoder, description): every row's features and encoded target, as
    xpann.tabular prepares them for training."""
    path, target, bundled = data.training_source(data_file, dataset, target, DEFAULT_DATASET, "xpann diagnose")
    if json_path:
        data.check_output(json_path, {"training data": path}, "records", option="--json")
    source = os.path.basename(str(path)) if bundled is None else f"bundled data set {bundled!r}"
    pipeline = tabular.TabularModel(target=target, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", preprocessing.PreprocessingWarning)
        x, y = pipeline.prepare(path)
    return x, y, pipeline.target_encoder, source


def _constant_guess_loss(y, encoder):
    """The training loss of the best constant prediction: the class entropy, or the variance."""
    values = [float(v) for v in y]
    if encoder.task == "classification":
        counts = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        return -sum(c / len(values) * math.log(c / len(values)) for c in counts.values())
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def _train(setup, x, y, encoder, depth, width, optimizer, lr, epochs, batch_size, seed, backend, baseline):
    initializer = setup.initializer()
    layers = [xpann.layers.Dense(width, activation=setup.activation, kernel_initializer=initializer)
              for _ in range(depth)]
    layers.append(xpann.layers.Dense(encoder.n_outputs, activation=encoder.output_activation,
                                     kernel_initializer=initializer))
    model = xpann.Sequential(layers, input_dim=x.shape[1], seed=seed, backend=backend)
    metric = "accuracy" if encoder.task == "classification" else "r2"
    model.compile(optimizer=type(xpann.optimizers.get(optimizer))(learning_rate=lr), loss=encoder.loss,
                  metrics=[metric])
    per_epoch = GradientMonitor(every=1, per="epoch")
    per_step = GradientMonitor(every=1, per="step", warn=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow noise from NumPy once weights blow up
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                            callbacks=[per_epoch, per_step])
    messages = []
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, TrainingHealthWarning) and text not in messages:
            messages.append(text)
    losses = history.history["loss"]
    kinds = [kind for kind in ("vanishing", "exploding", "dead", "saturated")
             if any(kind in text.lower() for text in messages)]
    if not all(math.isfinite(value) for value in losses):
        epoch = next(i for i, value in enumerate(losses) if not math.isfinite(value)) + 1
        verdict = f"explodes (loss {losses[epoch - 1]} in epoch {epoch}, stopped)"
        if "exploding" not in kinds:
            kinds.insert(0, "exploding")
    elif losses[-1] < LEARNS_BELOW * baseline:
        verdict = "learns"
    else:
        verdict = "does not learn"
    return {
        "setup": setup, "metric": metric, "loss": losses, "metric_values": history.history[metric],
        "records": per_epoch.history, "steps": per_step.history, "warnings": messages, "kinds": kinds,
        "verdict": verdict,
    }
