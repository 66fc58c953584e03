"""``xpann train``: a CSV file (or a bundled data set) to a trained model file, with honest metrics.
The pipeline is ``xpann.tabular.TabularModel``; this command parses the options and prints."""

import contextlib
import os
import shlex

import click

import xpann
from xpann.tabular import TabularModel

from . import data, options, report

DEFAULT_DATASET = "iris"
DEFAULT_EPOCHS, SMALL_DATA_STEPS, MAX_DEFAULT_EPOCHS = 20, 500, 100  # TabularModel's epochs="auto" rule


def _widths(ctx, param, value):
    text = value.strip()
    if text.lower() in ("", "none"):
        return []
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        widths = None
    if not widths or any(width < 1 for width in widths):
        raise click.BadParameter(f"{value!r} is not a comma-separated list of layer widths >= 1 (e.g. 64,32).")
    return widths


def _names(ctx, param, values):
    """--drop a,b --drop c -> ["a", "b", "c"]."""
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        raise click.BadParameter(f"{','.join(values)!r} is not a comma-separated list of column names.")
    return list(dict.fromkeys(names))


def _epochs(ctx, param, value):
    """--epochs 30 -> 30, --epochs cv -> "cv", nothing -> None ("auto")."""
    if value is None or value.strip().lower() == "cv":
        return None if value is None else "cv"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter(f"{value!r} is not a whole number >= 1 nor 'cv'.")
    return count


def _class_weights(ctx, param, value):
    """--class-weight balanced, or yes=4,no=1 -> {"yes": 4.0, "no": 1.0}."""
    if value is None or value.strip().lower() == "balanced":
        return None if value is None else "balanced"
    weights = {}
    for pair in value.split(","):
        label, _, weight = pair.rpartition("=")
        try:
            weights[label.strip()] = float(weight)
        except ValueError:
            label = ""
        if not label.strip():
            raise click.BadParameter(f"{value!r} is not 'balanced' nor LABEL=WEIGHT pairs (e.g. yes=4,no=1).")
    return weights


@click.command(epilog=data.MISSING_HELP + " A column of numbers (or YYYY-MM-DD dates) may hold a few other "
                     "values, at most 5% of its filled cells: they are read as missing, with a warning.")
@click.argument("data_file", metavar="[DATA.csv]", required=False)
@click.option("--target", "-t", metavar="COLUMN", help="The column to predict (default with --dataset: target).")
@click.option("--dataset", metavar="NAME",
              help="Train on a bundled data set (breast_cancer, diabetes, iris, wine) instead of a CSV file.")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"], case_sensitive=False),
              default="auto", show_default=True,
              help="auto: classification for a text, true/false or whole-number target with few values.")
@click.option("--drop", metavar="COL[,COL]", multiple=True, callback=_names,
              help="Columns to leave out of the features.")
@click.option("--categorical", metavar="COL[,COL]", multiple=True, callback=_names,
              help="Columns to encode as categories even where they hold numbers (codes, IDs).")
@click.option("--keep", metavar="COL[,COL]", multiple=True, callback=_names,
              help="Columns to use even if they look like IDs (text with a different value in every row, or "
                   "whole numbers 1, 2, 3, ... under an ID-like name such as id, *_id, index, row, key), which "
                   "are dropped by default.")
@click.option("--hidden", default="64,32", metavar="WIDTHS", show_default=True, callback=_widths,
              help="Widths of the hidden layers, comma-separated ('' for none).")
@click.option("--activation", default="relu", metavar="NAME", show_default=True,
              callback=options.checked_name(xpann.activations.get), help="Hidden-layer activation.")
@click.option("--init", "initializer", default="he_normal", metavar="NAME", show_default=True,
              callback=options.checked_name(xpann.initializers.get), help="Hidden-layer kernel initializer.")
@click.option("--optimizer", default="adam", metavar="NAME", show_default=True,
              callback=options.checked_name(xpann.optimizers.get), help="Optimizer name.")
@click.option("--lr", type=float, default=0.001, show_default=True, callback=options.learning_rate,
              help="Learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="cosine: the learning rate falls to 0 along a cosine over the planned steps.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="L2 weight decay of the optimizer (torch's weight_decay: added to each gradient).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Dropout rate after each hidden layer.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Classification: train on targets softened to (1 - s) one-hot + s / classes.")
@click.option("--scaling", type=click.Choice(["robust", "standard"]), default="robust", show_default=True,
              help="Number and date columns: robust, (x - median) / IQR smoothly clipped to +-3; standard, "
                   "(x - mean) / sd.")
@click.option("--epochs", default=None, metavar="N|cv", callback=_epochs,
              help=f"Passes over the training rows [default: {DEFAULT_EPOCHS}; small data sets get more, "
                   f"up to {MAX_DEFAULT_EPOCHS}, for about {SMALL_DATA_STEPS} steps]; cv: the count with the lowest "
                   "validation loss over 5 folds of the rows, then trained on every row.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Fraction of the rows held out for validation (stratified by class); 0 for none. The model "
                   "keeps the weights of the epoch with the lowest validation loss.")
@click.option("--patience", type=click.IntRange(min=0), default=None,
              help="Stop after this many epochs without a better validation loss [default: run every epoch].")
@options.backend
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the split, the initial weights and the shuffles.")
@click.option("--out", default="model.npz", show_default=True, metavar="FILE.npz", help="Where to save the model.")
@click.option("--plot", metavar="FILE.png", help="Draw the loss and metric curves (needs xpann[plot]).")
@click.option("--sample-weight", metavar="COLUMN", help="A column of row weights (numbers >= 0), left out of the "
                                                         "features: a row's loss counts that many times.")
@click.option("--class-weight", metavar="balanced|LABEL=W,...", callback=_class_weights,
              help="Weight each class's rows: 'balanced' (n / (classes x class count)) or LABEL=WEIGHT pairs.")
def train(data_file, target, dataset, task, drop, categorical, keep, hidden, activation, initializer, optimizer, lr, lr_schedule,
          weight_decay, dropout, label_smoothing, scaling, epochs, batch_size, val_split, patience, backend, seed, out, plot, sample_weight, class_weight):
    """Train a model on DATA.csv (or a bundled data set).

    Learns to predict the --target column of DATA.csv, or the target of a bundled --dataset.

    With neither, trains on the bundled iris data set. The preprocessing (scaling, one-hot
    encodings or category codes, dates as days, imputation, label names) is learned on the
    training rows and saved in the model.
    """
    with data.outliving_the_reader():  # | head must not cost the model: finish and save
        _train(data_file, target, dataset, task, drop, categorical, keep, hidden, activation, initializer, optimizer, lr, lr_schedule,
               weight_decay, dropout, label_smoothing, scaling, epochs, batch_size, val_split, patience, backend, seed, out, plot, sample_weight,
               class_weight)


def _train(data_file, target, dataset, task, drop, categorical, keep, hidden, activation, initializer, optimizer, lr, lr_schedule,
           weight_decay, dropout, label_smoothing, scaling, epochs, batch_size, val_split, patience, backend, seed, out, plot, sample_weight, class_weight):
    if patience is not None and val_split == 0:
        raise click.BadParameter("--patience watches the validation loss; give --val-split > 0.",
                                 param_hint="'--patience'")
    both = [name for name in drop if name in keep]
    if both:
        raise click.UsageError(f"Column {both[0]!r} is given to both --drop and --keep; choose one.")
    backend = xpann.backend.resolve_backend(backend)  # fails now, not after reading the data
    path, target = _source(data_file, dataset, target)
    data.check_output(out, {"training data": path}, "model")
    pyplot = None
    if plot:
        pyplot = options.plotting(plot)
        data.check_output(plot, {"training data": path, "model file (--out)": out}, "plot", option="--plot")
    pipeline = CommandLineModel(
        target=target, task=task, drop=drop, keep=keep, categorical=categorical, hidden=hidden, activation=activation, init=initializer,
        optimizer=optimizer, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay, dropout=dropout,
        label_smoothing=label_smoothing, scaling=scaling,
        epochs="auto" if epochs is None else epochs, batch_size=batch_size,
        val_split=val_split, patience=patience, class_weight=class_weight, seed=seed, backend=backend, verbose=1)
    try:
        with _in_cli_words(), report.warnings_as_messages():
            pipeline.fit(path, sample_weight=sample_weight)
    except xpann.errors.TrainingDivergedError as error:
        raise click.ClickException(str(error).replace("Nothing was kept.", "No model was saved.")) from None
    _final_table(pipeline)
    if plot:
        _plot(pyplot, pipeline.history, pipeline.target_encoder, plot)
        click.echo(f"Saved the training curves to {plot}.")
    pipeline.trained_on["dataset"] = dataset
    replacing = os.path.exists(out)
    pipeline.save(out)
    click.echo(f"Saved the model to {out}" + (" (it replaced the model that was there)." if replacing else "."))


OPTION_FLAGS = {"init": "--init", "val_split": "--val-split", "batch_size": "--batch-size"}
CLI_WORDS = {"choose the classification task": "use --task classification",
             "choose the regression task": "use --task regression",
             "give 0 for no validation": "use --val-split 0 for no validation",
             "Sample-weight column": "--sample-weight column", "class_weight": "--class-weight"}


class CommandLineModel(TabularModel):
    """The pipeline, naming its options as flags (``--keep id``, ``--lr``)."""

    def _option(self, name, value=None):
        flag = OPTION_FLAGS.get(name, f"--{name.replace('_', '-')}")
        return flag if value is None else f"{flag} {shlex.quote(str(value))}"


@contextlib.contextmanager
def _in_cli_words():
    """ValueErrors raised inside say what to do in the command line's words."""
    try:
        yield
    except ValueError as error:
        text = str(error)
        for words, option in CLI_WORDS.items():
            text = text.replace(words, option)
        raise ValueError(text) from None


def _source(data_file, dataset, target):
    """(CSV path, target column)."""
    if not (data_file or dataset or target):
        click.echo(f"No CSV file given: training on the bundled {DEFAULT_DATASET!r} data set "
                   "(xpann train DATA.csv --target COLUMN trains on yours).")
    path, target, bundled = data.training_source(data_file, dataset, target, DEFAULT_DATASET, "xpann train")
    if bundled is not None:
        click.echo(f"Using the bundled data set {bundled!r} ({path}).")
    return path, target


def _final_table(pipeline):
    columns = list(pipeline.scores_.items())
    names = list(columns[0][1])
    encoder = pipeline.target_encoder
    label = {"loss": "loss (standardised mse)" if encoder.task == "regression" else "loss (cross-entropy)"}
    click.echo("")
    click.echo(report.table([[label.get(n, n)] + [report.number(r[n]) for _, r in columns] for n in names],
                            header=["metric"] + [name for name, _ in columns]))
    if encoder.task == "regression":
        click.echo(f"(mae and rmse in the units of {encoder.name!r})")


def _plot(pyplot, history, encoder, path):
    metric = "accuracy" if encoder.task == "classification" else "mae"
    scale = encoder.scale if encoder.task == "regression" else 1.0
    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for axis, name, factor in ((axes[0], "loss", 1.0), (axes[1], metric, scale)):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                axis.plot(epochs, [v * factor for v in history[key]], style,
                          label="validation" if key.startswith("val_") else "train")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name if factor == 1.0 else f"{name} ({encoder.name} units)")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle(f"xpann training: {encoder.task} of {encoder.name!r}")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
