"""``xpann evaluate``: a saved model's loss and metrics on a labelled CSV file."""

import copy
import json
import math

import click

import xpann

from . import data, options, report
from .model_file import TabularModel


@click.command(epilog=data.MISSING_HELP)
@click.argument("model_file", metavar="MODEL")
@click.argument("data_file", metavar="[DATA.csv]", required=False)
@click.option("--dataset", metavar="NAME", help="Evaluate on a bundled data set (the CSV that "
                                                "xpann train --dataset NAME reads) instead of a CSV file.")
@click.option("--target", "-t", metavar="COLUMN", help="The column holding the true values [default: the one "
                                                       "the model was trained on].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@options.backend
def evaluate(model_file, data_file, dataset, target, as_json, backend):
    """Loss and metrics of MODEL on a labelled DATA.csv (or a bundled --dataset).

    A classifier gets its accuracy, per-class precision and recall and the confusion matrix; a
    regression gets mae, rmse and r2 in the target's units."""
    path = data.input_file(data_file, dataset)
    backend = xpann.backend.resolve_backend(backend)
    loaded = TabularModel(model_file, backend=backend)
    description = loaded.describe()
    trained_name = loaded.target.name
    target = target or trained_name
    table = data.read_table(path)
    frame = table.frame
    data.require_column(frame, target, path, what="Target column")
    if target != trained_name:
        click.echo(f"Warning: scoring the model's predictions of {trained_name!r} against the column {target!r} "
                   f"of {path}.", err=True)
    trained_on = loaded.stored.get("trained_on") or {}
    if trained_on.get("sha256") == table.digest:
        rows = trained_on.get("training_rows")
        count = f"{rows:,} " if isinstance(rows, int) else ""
        click.echo(f"Warning: {path} is the file the model was trained on: these rows include its {count}training "
                   "rows, so the metrics overstate how well it does on new data.", err=True)
    encoder = copy.copy(loaded.target)
    encoder.name = target  # messages name the column given
    frame, skipped = data.rows_with_target(frame, target, path)
    x = loaded.transform(frame, path)
    try:
        y = encoder.transform(frame[target])
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    results = report.in_target_units(loaded.model.evaluate(x, y), encoder)
    summary = {"model": model_file, "data": path, "rows": len(frame), "skipped_rows": skipped,
               "task": encoder.task, "target": target, "metrics": results}
    if encoder.task == "classification":
        details = report.classification_details(y, loaded.model.predict(x), encoder.classes)
        summary["metrics"]["accuracy"] = details["accuracy"]
        summary["per_class"] = details["per_class"]
        summary["confusion_matrix"] = details["confusion_matrix"]
    if as_json:
        summary["metrics"] = {k: v if math.isfinite(v) else None for k, v in summary["metrics"].items()}
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"Model: {model_file} ({description}).")
    click.echo(f"Data: {path}: {len(frame):,} rows"
               + (f" ({skipped:,} skipped: no value in {target!r})" if skipped else "") + ".")
    click.echo("")
    rows = []
    for name, value in results.items():
        label = name
        if name == "loss":
            label = "loss (cross-entropy)" if encoder.task == "classification" else "loss (standardised mse)"
        cell = report.number(value)
        if name == "accuracy":
            cell += f" ({details['correct']:,} of {len(frame):,})"
        rows.append([label, cell])
    click.echo(report.table(rows, header=["metric", "value"]))
    if encoder.task == "regression":
        click.echo(f"(mae and rmse in the units of {target!r})")
        return
    click.echo("")
    click.echo(report.table(
        [[str(c["class"]), report.number(c["precision"], 3), report.number(c["recall"], 3), report.number(c["support"])]
         for c in details["per_class"]],
        header=["class", "precision", "recall", "support"]))
    click.echo("")
    click.echo("Confusion matrix (rows: true class, columns: predicted class):")
    labels = [str(label) for label in encoder.classes]
    matrix = details["confusion_matrix"]["matrix"]
    click.echo(report.table([[label] + row for label, row in zip(labels, matrix)], header=[""] + labels))
