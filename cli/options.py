"""Option callbacks and helpers shared by the commands."""

import math
import os

import click

from . import data


backend = click.option(
    "--backend", type=click.Choice(["numpy", "cupy", "auto"], case_sensitive=False), default=None,
    help="numpy (CPU), cupy (GPU) or auto [default: $XPANN_BACKEND, else numpy].")
"""The --backend option every command that runs a model takes."""


def checked_name(build):
    """A Click callback that builds the named object once, so a bad name fails before any work."""

    def callback(ctx, param, value):
        try:
            build(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        return value.strip().lower()

    return callback


def learning_rate(ctx, param, value):
    """A Click callback accepting only a finite learning rate > 0."""
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"{value!r} is not a learning rate: give a finite number > 0 (e.g. 0.001).")
    return value


def plotting(path):
    """matplotlib's pyplot on the file-only Agg backend for writing ``path``; a clear message when
    matplotlib is missing or cannot write that kind of file."""
    try:
        import matplotlib
    except ImportError:
        raise click.ClickException(
            "--plot needs matplotlib, which is not installed. Install it with: pip install 'xpann[plot]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    kinds = pyplot.figure().canvas.get_supported_filetypes()
    pyplot.close("all")
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix not in kinds:
        raise click.BadParameter(f"{path!r}: matplotlib cannot write .{suffix or '(no extension)'} files; "
                                 f"use one of .{', .'.join(sorted(kinds))}.", param_hint="'--plot'")
    data.check_writable(path, "plot")
    return pyplot
