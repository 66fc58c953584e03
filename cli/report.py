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
