"""What the commands print: tables, metrics in the target's units, warnings as plain messages."""

import contextlib
import math
import warnings

import click
import numpy


def number(value, digits=4):
    """A float for a table: ``n/a`` for None or NaN, 4 significant decimals otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, numpy.integer)):
        return f"{int(value):,}"
    return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.4g}"


def table(rows, header=None):
    """Rows of cells as aligned text: the first column left-aligned, the others right-aligned."""
    rows = [[str(cell) for cell in row] for row in ([header] if header else []) + list(rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def in_target_units(results, encoder):
    """``model.evaluate`` results with mae/rmse (and mse) of a standardised target put back in its
    units; r2 is the same on either scale. The loss stays what training minimised."""
    if encoder.task != "regression":
        return dict(results)
    scaled = dict(results)
    for name in ("mae", "rmse"):
        if name in scaled:
            scaled[name] = results[name] * encoder.scale
    if "mse" in scaled:
        scaled["mse"] = results["mse"] * encoder.scale ** 2
    return scaled


def classification_details(codes, probabilities, classes):
    """Accuracy, per-class precision/recall/support and the confusion matrix (rows: true class)."""
    predicted = numpy.asarray(probabilities).argmax(axis=1)
    k = len(classes)
    matrix = numpy.zeros((k, k), dtype=numpy.int64)
    numpy.add.at(matrix, (numpy.asarray(codes), predicted), 1)
    per_class = []
    for i, label in enumerate(classes):
        predicted_i, actual_i, correct = matrix[:, i].sum(), matrix[i].sum(), matrix[i, i]
        per_class.append({
            "class": label,
            "precision": float(correct / predicted_i) if predicted_i else None,
            "recall": float(correct / actual_i) if actual_i else None,
            "support": int(actual_i),
        })
    return {
        "accuracy": float(numpy.trace(matrix) / matrix.sum()),
        "correct": int(numpy.trace(matrix)),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(classes), "matrix": matrix.tolist()},
    }


def describe_backend(backend):
    """The backend and its device in a few words: "numpy (CPU, openblas 0.3.31, 2 threads)"."""
    try:
        info = backend.device_info()
    except Exception:  # a report must not fail on a device query
        info = {}
    if backend.name == "cupy":
        gpu = info.get("gpu", "GPU")
        return f"cupy ({gpu}, device {info.get('device', 0)})"
    blas = info.get("blas") or []
    if blas:
        first = blas[0]
        return f"numpy (CPU, {first.get('library')} {first.get('version')}, {first.get('threads')} threads)"
    return "numpy (CPU)"


@contextlib.contextmanager
def warnings_as_messages(held=()):
    """Collect the warnings raised inside the block and print each once as ``Warning: ...`` on
    standard error; warnings of the ``held`` categories are kept in the yielded list instead."""
    kept = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield kept
        finally:
            seen = set()
            for warning in caught:
                if held and issubclass(warning.category, held):
                    kept.append(warning)
                    continue
                text = str(warning.message)
                if text not in seen:
                    seen.add(text)
                    click.echo(f"Warning: {text}", err=True)


def count(number, noun):
    """ "1 epoch", "3 epochs": the number and the noun, plural unless the number is 1."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
