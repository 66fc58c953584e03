"""``xpann predict``: the rows of a CSV file with the model's predictions in the target's terms."""

import click

import xpann
from xpann import tabular

from . import data, options, report


@click.command(epilog=data.MISSING_HELP)
@click.argument("model_file", metavar="MODEL")
@click.argument("data_file", metavar="[DATA.csv]", required=False)
@click.option("--dataset", metavar="NAME", help="Predict for the rows of a bundled data set (the CSV that "
                                                "xpann train --dataset NAME reads) instead of a CSV file.")
@click.option("--out", metavar="FILE.csv", help="Where to write the predictions [default: standard output].")
@options.backend
def predict(model_file, data_file, dataset, out, backend):
    """Predict for every row of DATA.csv (or a bundled --dataset) with MODEL.

    Writes the input rows unchanged plus a `prediction` column (class labels exactly as in the
    training file, or values in the target's units) and, for a classifier, one
    `probability_<class>` column per class. The target column is not needed.
    """
    path = data.input_file(data_file, dataset)
    backend = xpann.backend.resolve_backend(backend)
    if out is not None:
        data.check_output(out, {"model file": model_file, "data file": path}, "predictions")
    pipeline = tabular.load(model_file, backend=backend)
    table = pipeline.read(path)
    with report.warnings_as_messages():
        added = pipeline.predict_table(table)
    missing = pipeline.preprocessor.missing_counts(table.frame)
    if missing:
        counts = ", ".join(f"{name} {count:,}" for name, count in missing.items())
        click.echo(f"Filled {sum(missing.values()):,} missing value(s) as in training: {counts}.", err=True)
    rows = table.raw  # the cells exactly as in the file
    replaced = [name for name in added.columns if name in rows.columns]
    if replaced:
        click.echo(f"Warning: {path} already has column(s) {', '.join(replaced)}; they are replaced.", err=True)
    if pipeline.task == "regression":  # float32 outputs: 7 significant digits, not float64's noise
        added["prediction"] = [float(f"{value:.7g}") for value in added["prediction"]]
    rows = rows.drop(columns=replaced).assign(**{name: added[name].to_numpy() for name in added.columns})
    data.write_csv(rows, out)
    if out is not None:  # on standard error when the predictions went to standard output
        click.echo(f"Wrote {len(rows):,} predictions ({describe(pipeline)}) to {out}.", err=data.is_standard_output(out))


def describe(pipeline):
    """ "classification of 'species' into 3 classes" or "regression of 'price'"."""
    if pipeline.task == "classification":
        return f"classification of {pipeline.target!r} into {len(pipeline.classes_)} classes"
    return f"regression of {pipeline.target!r}"
