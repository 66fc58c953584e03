"""``xpann evaluate``: a saved model's loss and metrics on a labelled CSV file."""

import json
import math

import click

import xpann
from xpann import tabular

from . import data, options, report
from .predict import describe


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
    pipeline = tabular.load(model_file, backend=backend)
    target = target or pipeline.target
    table = pipeline.read(path, text=[target])
    data.require_column(table.frame, target, path, what="Target column")
    if target != pipeline.target:
        click.echo(f"Warning: scoring the model's predictions of {pipeline.target!r} against the column {target!r} "
                   f"of {path}.", err=True)
    if pipeline.trained_on.get("sha256") == table.digest:
        rows = pipeline.trained_on.get("training_rows")
        count = f"{rows:,} " if isinstance(rows, int) else ""
        click.echo(f"Warning: {table.path} is the file the model was trained on: these rows include its {count}training "
                   "rows, so the metrics overstate how well it does on new data.", err=True)
    with report.warnings_as_messages():
        summary = pipeline.evaluation(table, target=target)
    missing = pipeline.preprocessor.missing_counts(table.frame)
    if missing:
        counts = ", ".join(f"{name} {count:,}" for name, count in missing.items())
        click.echo(f"Filled {sum(missing.values()):,} missing value(s) as in training: {counts}.", err=True)
    results, skipped, rows = summary["metrics"], summary["skipped_rows"], summary["rows"]
    if as_json:
        shown = {"model": model_file, "data": path, "rows": rows, "skipped_rows": skipped, "task": summary["task"],
                 "target": target,
                 "metrics": {k: v if math.isfinite(v) else None for k, v in results.items()}}
        for key in ("per_class", "confusion_matrix"):
            if key in summary:
                shown[key] = summary[key]
        click.echo(json.dumps(shown, indent=2))
        return
    click.echo(f"Model: {model_file} ({describe(pipeline)}).")
    click.echo(f"Data: {path}: {rows:,} rows" + (f" ({skipped:,} skipped: no value in {target!r})" if skipped else "")
               + ".")
    click.echo("")
    lines = []
    for name, value in results.items():
        label = name
        if name == "loss":
            label = "loss (cross-entropy)" if summary["task"] == "classification" else "loss (standardised mse)"
        cell = report.number(value)
        if name == "accuracy":
            cell += f" ({summary['correct']:,} of {rows:,})"
        lines.append([label, cell])
    click.echo(report.table(lines, header=["metric", "value"]))
    if summary["task"] == "regression":
        click.echo(f"(mae and rmse in the units of {target!r})")
        return
    click.echo("")
    click.echo(report.table(
        [[str(c["class"]), report.number(c["precision"], 3), report.number(c["recall"], 3), report.number(c["support"])]
         for c in summary["per_class"]],
        header=["class", "precision", "recall", "support"]))
    click.echo("")
    click.echo("Confusion matrix (rows: true class, columns: predicted class):")
    labels = [str(label) for label in summary["confusion_matrix"]["labels"]]
    matrix = summary["confusion_matrix"]["matrix"]
    click.echo(report.table([[label] + row for label, row in zip(labels, matrix)], header=[""] + labels))
