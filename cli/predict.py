"""``xpann predict``: the rows of a CSV file with the model's predictions in the target's terms."""

import click

import xpann

from . import data, report
from .model_file import TabularModel


@click.command()
@click.argument("model_file", metavar="MODEL")
@click.argument("data_file", metavar="DATA.csv")
@click.option("--out", metavar="FILE.csv", help="Where to write the predictions [default: standard output].")
@click.option("--backend", type=click.Choice(["numpy", "cupy", "auto"], case_sensitive=False), default=None,
              help="numpy (CPU), cupy (GPU) or auto [default: $XPANN_BACKEND, else numpy].")
def predict(model_file, data_file, out, backend):
    """Predict for every row of DATA.csv with MODEL.

    Writes the input rows unchanged plus a `prediction` column (original class labels, or values
    in the target's units) and, for a classifier, one `probability_<class>` column per class.
    The target column is not needed.
    """
    backend = xpann.backend.resolve_backend(backend)
    loaded = TabularModel(model_file, backend=backend)
    if out is not None:
        data.check_writable(out, "predictions")
    frame = data.read_csv(data_file)
    x = loaded.transform(frame, data_file)
    missing = loaded.features.missing_counts(frame)
    if missing:
        counts = ", ".join(f"{name} {count:,}" for name, count in missing.items())
        click.echo(f"Filled {sum(missing.values()):,} missing value(s) as in training: {counts}.", err=True)
    outputs = loaded.model.predict(x)
    encoder = loaded.target
    added = {"prediction": encoder.decode(outputs)}
    if encoder.task == "classification":
        for index, label in enumerate(encoder.classes):
            added[f"probability_{label}"] = outputs[:, index]
    rows = data.read_csv(data_file, raw=True)  # the cells exactly as in the file
    if len(rows) != len(frame):
        raise ValueError(f"{data_file} changed while it was being read; run the command again.")
    replaced = [name for name in added if name in rows.columns]
    if replaced:
        click.echo(f"Warning: {data_file} already has column(s) {', '.join(replaced)}; they are replaced.", err=True)
    rows = rows.drop(columns=replaced).assign(**added)
    data.write_csv(rows, out)
    if out is not None:
        click.echo(f"Wrote {len(rows):,} predictions ({loaded.describe()}) to {out}.")
