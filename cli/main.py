"""The ``xpann`` command group."""

import click

import xpann


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(xpann.__version__, prog_name="xpann")
def cli():
    """xpann: train, evaluate and run neural networks on tabular data, on the CPU or a GPU."""


def main():
    cli()
