"""``xpann export``: a model file to ONNX, its stored preprocessing included."""

import click

import xpann

from . import data


@click.command()
@click.argument("model_file", metavar="MODEL.npz")
@click.argument("onnx_file", metavar="OUT.onnx")
@click.option("--opset", type=click.IntRange(min=20), default=None, help="ONNX opset [default: 20].")
def export(model_file, onnx_file, opset):
    """Write MODEL.npz as an ONNX graph to OUT.onnx.

    A model from `xpann train` takes one input per raw column ([N, 1]: float for numbers, string
    for text and dates, an empty string for a missing cell) and gives `label` and `probabilities`,
    or `prediction` in the target's units, as `xpann predict` does. Other models take `x`."""
    data.check_output(onnx_file, {"model file": model_file}, "ONNX model")
    if not onnx_file.lower().endswith(".onnx"):
        raise click.BadParameter(f"{onnx_file!r}: an ONNX file name must end in .onnx.", param_hint="'OUT.onnx'")
    model = xpann.load_model(model_file)
    xpann.export_onnx(model, onnx_file, opset=opset)
    click.echo(f"Wrote {onnx_file} (opset {opset or 20}).")
