"""The ``xpann`` command group: every user mistake becomes one message and a non-zero exit."""

import click

import xpann

from . import data
from .bench import bench
from .diagnose import diagnose
from .evaluate import evaluate
from .info import info
from .predict import predict
from .train import train


class FriendlyGroup(click.Group):
    """Turns errors raised by a command into ``Error: <message>`` (exit 1); ``--debug`` shows the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # Click reports these itself
        except BrokenPipeError:  # the reader stopped early (xpann ... | head): exit quietly, successfully
            data.quiet_stdout()
            raise click.exceptions.Exit(0) from None
        except (ValueError, OSError, xpann.BackendUnavailableError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {error} (run with xpann --debug ... for the traceback)"
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


def main():
    cli()
