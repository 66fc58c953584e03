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
    """The command line; under an MPI launcher (``mpiexec -n 4 xpann train ...``) every rank runs
    ``train`` data-parallel, rank 0 alone prints (its warnings too) and writes files (the model, the
    --plot curves), and a rank that fails prints the job's one ``Error:`` line and stops them all.
    Other commands (evaluate, predict...) run on rank 0 alone, as one process; the others exit."""
    import time
    import warnings

    if not xpann.distributed.launched_by_mpi():
        cli()
        return
    arguments = sys.argv[1:]
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    if command != "train":
        rank = xpann.distributed.launcher_rank()
        if rank is None:  # no launcher variable says: MPI does (the world of xpann stays one process)
            from mpi4py import MPI

            rank = MPI.COMM_WORLD.Get_rank()
        if rank == 0:
            cli()
        return
    ranks = xpann.distributed.init()
    world = xpann.distributed.world()
    errors = sys.stderr
    if world.rank:
        sys.stdout = open(os.devnull, "w")
        if "--debug" not in arguments:  # with --debug every rank shows its traceback
            sys.stderr = open(os.devnull, "w")
        warnings.simplefilter("ignore")
        kept, skip = [], False  # without --plot FILE: rank 0 draws the curves
        for argument in arguments:
            if skip:
                skip = False
            elif argument == "--plot":
                skip = True
            elif not argument.startswith("--plot="):
                kept.append(argument)
        arguments = kept
    else:
        click.echo(f"Data-parallel: {ranks} ranks over {world.engine.upper()}; rank 0 prints and writes files.")

    def fail(show):
        # A failing rank other than 0 waits before it speaks: where rank 0 fails too (the same
        # missing file, say), rank 0's abort ends the job first and the job shows one Error: line.
        if world.rank:
            time.sleep(5.0)
        show()
        errors.flush()
        world.abort("the command failed (the message above says why)")

    try:
        code = cli.main(args=arguments, prog_name="xpann", standalone_mode=False)
    except click.ClickException as error:
        fail(lambda: error.show(file=errors))
    except click.Abort:
        fail(lambda: errors.write("Aborted!\n"))
    else:
        if isinstance(code, int) and code:  # click's Exit with a code
            fail(lambda: None)
