"""The ``xpann`` command group: every user mistake becomes one message and a non-zero exit."""

import os
import sys

import click

import xpann

from . import data
from .bench import bench
from .diagnose import diagnose
from .evaluate import evaluate
from .export import export
from .info import info
from .predict import predict
from .train import train


class FriendlyGroup(click.Group):
    """Turns errors raised by a command into ``Error: <message>`` (exit 1); ``--debug`` (before or
    after the command's name) shows the traceback."""

    def parse_args(self, ctx, args):
        if "--debug" in args[1:]:
            args = ["--debug"] + [arg for arg in args if arg != "--debug"]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # Click reports these itself
        except BrokenPipeError:  # the reader stopped early (xpann ... | head): exit quietly, successfully
            data.quiet_stdout()
            raise click.exceptions.Exit(0) from None
        except (ValueError, OSError, xpann.BackendUnavailableError, xpann.errors.TrainingDivergedError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            detail = str(error) or ("out of memory" if isinstance(error, MemoryError) else "no message")
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {detail} (run with xpann --debug ... for the traceback)"
            ) from None


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(xpann.__version__, prog_name="xpann")
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def cli(ctx, debug):
    """xpann: train, evaluate and run neural networks on tabular data, on the CPU or a GPU."""
    ctx.ensure_object(dict)["debug"] = debug



cli.add_command(info)
cli.add_command(train)
cli.add_command(evaluate)
cli.add_command(predict)
cli.add_command(diagnose)
cli.add_command(bench)
cli.add_command(export)


def main():
    """The command line; under an MPI launcher (``mpiexec -n 4 xpann train ...``) every rank runs the
    command data-parallel, rank 0 alone prints, and a rank that fails stops them all."""
    if not xpann.distributed.launched_by_mpi():
        cli()
        return
    ranks = xpann.distributed.init()
    world = xpann.distributed.world()
    if world.rank:
        sys.stdout = open(os.devnull, "w")
    else:
        click.echo(f"Data-parallel: {ranks} ranks over {world.engine.upper()}; rank 0 prints and writes files.")
    try:
        cli()
    except SystemExit as stop:
        if stop.code not in (0, None):
            world.abort("the command failed (its Error: line says why)")
        raise
