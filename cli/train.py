"""``xpann train``: a CSV file (or a bundled data set) to a trained model file, with honest metrics."""

import contextlib
import math
import os
import shlex
import time

import click

import xpann
from xpann import preprocessing
from xpann.errors import TrainingHealthWarning

from . import data, options, report

DEFAULT_DATASET = "iris"
DEFAULT_EPOCHS = 20
SMALL_DATA_STEPS = 500  # without --epochs, small data sets get epochs enough for this many steps...
MAX_DEFAULT_EPOCHS = 100  # ...but no more than this many epochs


def default_epochs(rows, batch_size):
    """20 epochs, or more for a small training set: enough for about 500 optimizer steps, at
    most 100 epochs (iris: 120 rows in batches of 32 is 4 steps an epoch, so 100 epochs)."""
    steps = math.ceil(rows / batch_size)
    return max(DEFAULT_EPOCHS, min(MAX_DEFAULT_EPOCHS, math.ceil(SMALL_DATA_STEPS / steps)))


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
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help=f"Passes over the training rows [default: {DEFAULT_EPOCHS}; small data sets get more, "
                   f"up to {MAX_DEFAULT_EPOCHS}, for about {SMALL_DATA_STEPS} steps].")
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
def train(data_file, target, dataset, task, drop, keep, hidden, activation, initializer, optimizer, lr, epochs,
          batch_size, val_split, patience, backend, seed, out, plot):
    """Train a model on DATA.csv (or a bundled data set).

    Learns to predict the --target column of DATA.csv, or the target of a bundled --dataset.

    With neither, trains on the bundled iris data set. The preprocessing (scaling, one-hot
    encodings, dates as days, imputation, label names) is learned on the training rows and saved
    in the model.
    """
    if patience is not None and val_split == 0:
        raise click.BadParameter("--patience watches the validation loss; give --val-split > 0.",
                                 param_hint="'--patience'")
    backend = xpann.backend.resolve_backend(backend)  # fails now, not after reading the data
    path, target, source = _source(data_file, dataset, target)
    data.check_output(out, {"training data": path}, "model")
    pyplot = None
    if plot:
        pyplot = options.plotting(plot)
        data.check_output(plot, {"training data": path, "model file (--out)": out}, "plot", option="--plot")

    table = data.read_table(path)
    frame = table.frame
    data.require_column(frame, target, path, what="Target column")
    features = _features(frame, target, drop, keep, path)
    frame, dropped_rows = data.rows_with_target(frame, target, path)
    notes = f" ({'; '.join(table.notes)})" if table.notes else ""
    click.echo(f"Data: {source}: {len(frame) + dropped_rows:,} rows, {len(frame.columns):,} columns{notes}.")
    if dropped_rows:
        click.echo(f"Skipped {dropped_rows:,} row(s) with no value in the target column {target!r}.")

    with _about(path):
        task, reason = _task(frame[target], task)
        if task == "classification":
            preprocessing.check_classification_target(frame[target])
    click.echo(f"Task: {task} ({reason}).")
    labels = frame[target] if task == "classification" else None
    with _about(path):
        ids = preprocessing.id_columns(frame, [c for c in features if c not in drop], keep)
        train_rows, validation_rows = preprocessing.split_rows(len(frame), val_split, seed, labels)
    training, validation = frame.iloc[train_rows], frame.iloc[validation_rows]

    with _about(path), report.warnings_as_messages(held=(preprocessing.PreprocessingWarning,)):
        preprocessor = preprocessing.TabularPreprocessor().fit(training, features, drop=drop, keep=keep, ids=ids)
    with _about(path), report.warnings_as_messages():
        # One pass over all the rows, so each column's odd cells are reported once.
        x_all = preprocessor.transform(frame, warn_truncated=False)
        encoder = preprocessing.TargetEncoder(task, name=target).fit(training[target])
        y_train = encoder.transform(training[target])
        x_train = x_all[train_rows]
        held_out = (x_all[validation_rows], encoder.transform(validation[target])) if len(validation) else None
    _describe_preprocessing(preprocessor, encoder, x_train.shape[1], keep)
    split = "stratified by class, " if task == "classification" else ""
    click.echo(f"Split: {len(training):,} training rows, {len(validation):,} validation rows ({split}seed {seed}).")

    model = _network(hidden, activation, initializer, x_train.shape[1], encoder, seed, backend)
    model.compile(optimizer=type(xpann.optimizers.get(optimizer))(learning_rate=lr), loss=encoder.loss,
                  metrics=["accuracy"] if task == "classification" else ["mae", "rmse", "r2"])
    if epochs is None:
        epochs = default_epochs(len(training), batch_size)
        note = "" if epochs == DEFAULT_EPOCHS else f" (more than {DEFAULT_EPOCHS} for a small data set; --epochs sets it)"
    else:
        note = ""
    guard = xpann.callbacks.TerminateOnNaN()  # fit's own guard, kept here to ask it afterwards
    stopper = None if held_out is None else xpann.callbacks.EarlyStopping(
        monitor="val_loss", patience=epochs if patience is None else patience, restore_best_weights=True)
    shape = " -> ".join([str(x_train.shape[1])] + [f"{w} {activation}" for w in hidden]
                        + [f"{encoder.n_outputs} {encoder.output_activation}"])
    output_init = "glorot_uniform"  # the Dense default, which the output layer keeps
    inits = f"{initializer} hidden, {output_init} output" if hidden else output_init
    click.echo(f"Network: {shape} ({inits}), {model.count_params():,} parameters.")
    if stopper is None:
        keeping = "; no validation rows, so the model keeps the last epoch's weights"
    elif patience is None:
        keeping = "; the model keeps the weights of the epoch with the lowest val_loss"
    else:
        keeping = f"; stop after {patience} epochs without a better val_loss and keep the best epoch's weights"
    click.echo(f"Training: {optimizer} lr {lr:g}, batch {batch_size}, {report.count(epochs, 'epoch')}{note}{keeping}.")
    click.echo(f"Backend: {report.describe_backend(model.backend)}.")
    if task == "regression":
        click.echo(f"(The per-epoch loss, mae and rmse are on the standardised target; the table at the end "
                   f"is in the units of {target!r}.)")

    with report.warnings_as_messages(held=(Warning,)) as caught:
        start = time.perf_counter()
        history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, validation_data=held_out,
                            callbacks=[guard] + ([stopper] if stopper else []), verbose=1, shuffle=True)
        seconds = time.perf_counter() - start
    if guard.stopped_epoch is not None:
        _diverged(guard.stopped_epoch, history.history, caught, lr)
    for text in dict.fromkeys(str(w.message) for w in caught):
        click.echo(f"Warning: {text}", err=True)

    epochs_run = len(history.epoch)
    best_epoch = None
    if stopper is not None and stopper.best_epoch is not None:
        best_epoch = stopper.best_epoch + 1
        if stopper.stopped_epoch is not None:
            click.echo(f"Stopped early after epoch {epochs_run} ({stopper.patience} epochs without a better "
                       f"val_loss); kept the weights of epoch {best_epoch} (val_loss {stopper.best:.4f}).")
        else:
            click.echo(f"Kept the weights of epoch {best_epoch} of {epochs_run}, the one with the lowest val_loss "
                       f"({stopper.best:.4f}).")
    _final_table(model, encoder, (x_train, y_train), held_out)
    samples = len(training) * epochs_run
    click.echo(f"Time: {seconds:.2f} s for {report.count(epochs_run, 'epoch')}, {samples / max(seconds, 1e-9):,.0f} samples/s "
               f"on {report.describe_backend(model.backend)}.")
    if plot:
        _plot(pyplot, history.history, encoder, plot)
        click.echo(f"Saved the training curves to {plot}.")
    preprocessing.attach(model, preprocessor, encoder, trained_on={
        "data": os.path.basename(str(path)), "dataset": dataset, "sha256": table.digest,
        "training_rows": len(training), "validation_rows": len(validation), "epochs": epochs_run,
        "best_epoch": best_epoch, "seed": seed})
    model.save(out)
    click.echo(f"Saved the model to {out}.")


CLI_WORDS = {"choose the classification task": "use --task classification",
             "choose the regression task": "use --task regression",
             "give 0 for no validation": "use --val-split 0 for no validation"}


@contextlib.contextmanager
def _about(path):
    """ValueErrors raised inside name the file ``path``, in the command line's words."""
    try:
        yield
    except ValueError as error:
        text = str(error)
        for words, option in CLI_WORDS.items():
            text = text.replace(words, option)
        raise ValueError(f"{path}: {text}") from None


def _features(frame, target, drop, keep, path):
    """The feature columns: all but the target; --drop and --keep must name other columns."""
    for option, names in (("--drop", drop), ("--keep", keep)):
        for name in names:
            if name == target:
                raise click.BadParameter(f"{name!r} is the target column.", param_hint=f"'{option}'")
            try:
                data.require_column(frame, name, path, what="Column")
            except ValueError as error:
                raise click.BadParameter(str(error), param_hint=f"'{option}'") from None
    both = [name for name in drop if name in keep]
    if both:
        raise click.UsageError(f"Column {both[0]!r} is given to both --drop and --keep; choose one.")
    return [column for column in frame.columns if column != target]


def _diverged(epoch, logs, caught, lr):
    """Training produced a NaN or infinite loss: show the health findings, then fail, saving nothing."""
    findings = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, TrainingHealthWarning)
                             and "training stopped" not in str(w.message))
    for text in findings:
        click.echo(f"Warning: {text}", err=True)
    values = ", ".join(f"{name} {logs[name][-1]}" for name in ("loss", "val_loss")
                       if name in logs and not math.isfinite(logs[name][-1]))
    raise click.ClickException(
        f"Training failed in epoch {epoch + 1} ({values or 'loss not finite'}): the weights blew up. Try a smaller "
        f"--lr (now {lr:g}), another --optimizer or --init. No model was saved.")


def _source(data_file, dataset, target):
    """(CSV path, target column, the data's name in the report)."""
    if not (data_file or dataset or target):
        click.echo(f"No CSV file given: training on the bundled {DEFAULT_DATASET!r} data set "
                   "(xpann train DATA.csv --target COLUMN trains on yours).")
    path, target, bundled = data.training_source(data_file, dataset, target, DEFAULT_DATASET, "xpann train")
    return path, target, path if bundled is None else f"bundled data set {bundled!r} ({path})"


def _task(series, requested):
    if requested != "auto":
        return requested, "as asked with --task"
    task, reason = preprocessing.infer_task(series)
    if task == "classification" and "whole numbers" in reason:
        reason += "; --task regression predicts them as numbers"
    return task, reason


def _describe_preprocessing(preprocessor, encoder, width, keep):
    kinds = [spec["kind"] for spec in preprocessor.columns]
    count = kinds.count("date")
    dates = f", {count} date{'s' if count > 1 else ''} (days since 1970-01-01, standardised)" if count else ""
    click.echo(f"Features: {kinds.count('numeric')} numeric (standardised){dates}, {kinds.count('categorical')} "
               f"text (one-hot) -> {width} network inputs.")
    for spec in preprocessor.columns:
        if spec["kind"] == "date":
            click.echo(f"Column {spec['name']!r} holds dates: read as days since 1970-01-01, then standardised.")
    if encoder.task == "classification":
        click.echo(f"Classes: {', '.join(map(str, encoder.classes))}.")
    else:
        click.echo(f"Target: mean {encoder.mean:.4g}, standard deviation {encoder.scale:.4g} "
                   "(standardised for training; predictions come back in its units).")
    used = [spec for spec in preprocessor.columns if spec["name"] in preprocessor.missing]
    if used:
        fills = ", ".join(f"{spec['name']} {preprocessor.missing[spec['name']]:,} ({_fill_rule(spec)} {_fill(spec)})"
                          for spec in used)
        total = sum(preprocessor.missing[spec["name"]] for spec in used)
        click.echo(f"Missing values in the training rows: {total:,} filled: {fills}.")
    else:
        elsewhere = " (in the columns used)" if preprocessor.missing else ""
        click.echo(f"Missing values in the training rows: none{elsewhere}.")
    for name, reason in preprocessor.dropped.items():
        hint = f"; --keep {shlex.quote(str(name))} uses it" if "ID" in reason else ""
        click.echo(f"Dropped column {name!r}: {reason}{hint}.")
    for name, count in preprocessor.truncated.items():
        click.echo(f"Column {name!r} has {count:,} categories; kept the {preprocessor.max_categories} most "
                   "frequent: rare categories beyond those (and new ones) are encoded as all zeros.")


def _fill_rule(spec):
    return "most frequent" if spec["kind"] == "categorical" else "median"


def _fill(spec):
    if spec["kind"] == "numeric":
        return f"{spec['fill']:.4g}"
    if spec["kind"] == "date":
        import pandas

        return (pandas.Timestamp("1970-01-01") + pandas.Timedelta(days=spec["fill"])).strftime("%Y-%m-%d")
    return repr(spec["fill"])


def _network(hidden, activation, initializer, width, encoder, seed, backend):
    layers = [xpann.layers.Dense(units, activation=activation, kernel_initializer=initializer) for units in hidden]
    layers.append(xpann.layers.Dense(encoder.n_outputs, activation=encoder.output_activation))
    return xpann.Sequential(layers, input_dim=width, seed=seed, backend=backend)


def _final_table(model, encoder, training, validation):
    columns = [("train", model.evaluate(*training))]
    if validation is not None:
        columns.append(("validation", model.evaluate(*validation)))
    columns = [(name, report.in_target_units(results, encoder)) for name, results in columns]
    names = list(columns[0][1])
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
