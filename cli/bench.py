"""``xpann bench``: training speed of one MLP over a list of batch sizes on each backend.

Per batch size: samples/s and step time on each backend, the GPU/CPU speed-up, and the batch size
from which the GPU wins. A backend that cannot run here is listed with its reason; the command
still succeeds. ``--json`` writes every figure with the environment it was measured in.
"""

import json
import math

import click

from xpann import benchmarking, optimizers
from xpann.backend import backend_status

from . import data, report

BACKENDS = ("numpy", "cupy")
POOL_VALUES = 2**24
"""At most this many feature values (64 MiB in float32) of synthetic data per run; a batch size
whose steps need more samples cycles over them in several epochs."""


def _positive_ints(text, what):
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(value < 1 for value in values):
        raise click.BadParameter(f"{what} must be whole numbers >= 1 separated by commas, got {text!r}.")
    return values


def _backend_names(text):
    if text is None:
        return list(BACKENDS)
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise click.BadParameter(f"backends are {', '.join(BACKENDS)} separated by commas, got {text!r}.")
    return list(dict.fromkeys(names))


def _duration(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _threads(row):
    """The BLAS thread count most timed steps ran on, with the share when it varied."""
    if not row or row["blas_threads"] is None:
        return "-"
    steps = row.get("blas_threads_steps") or {}
    total = sum(steps.values())
    share = steps.get(str(row["blas_threads"]), total) / total if total else 1.0
    return str(row["blas_threads"]) if share >= 0.995 else f"{row['blas_threads']} ({share:.0%})"


@click.command()
@click.option("--backends", default=None, metavar="NAMES",
              help="Comma-separated backends to measure: numpy,cupy (default: all; unavailable ones are listed).")
@click.option("--batch-sizes", default="64,256,1024,4096", show_default=True, metavar="SIZES",
              help="Comma-separated batch sizes.")
@click.option("--hidden", default="128,128", show_default=True, metavar="WIDTHS",
              help="Hidden layer widths (ReLU), comma-separated.")
@click.option("--features", default=64, show_default=True, type=click.IntRange(min=1), help="Input features.")
@click.option("--classes", default=10, show_default=True, type=click.IntRange(min=2),
              help="Output classes (softmax with cross-entropy).")
@click.option("--optimizer", default="sgd", show_default=True, help="Optimizer name (sgd, adam, ...).")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--steps", default=50, show_default=True, type=click.IntRange(min=1),
              help="Timed training steps per repeat.")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(min=1),
              help="Timed repeats; figures are medians.")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(min=0),
              help="Untimed warm-up steps per batch size and backend.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write every figure and the environment to FILE as JSON.")
def bench(backends, batch_sizes, hidden, features, classes, optimizer, dtype, steps, repeats, warmup, seed,
          json_path):
    """Training throughput of an MLP per batch size on each backend, with the GPU/CPU crossover."""
    if json_path:
        data.check_output(json_path, {}, "JSON results", option="--json")
    names = _backend_names(backends)
    batch_sizes = sorted(set(_positive_ints(batch_sizes, "--batch-sizes")))
    hidden = _positive_ints(hidden, "--hidden")
    optimizers.get(optimizer)  # an unknown name fails here, listing the valid ones
    if features < 31 and classes > 2**features:
        raise click.BadParameter(f"{classes} classes need at least {math.ceil(math.log2(classes))} features "
                                 "to draw the synthetic data from.", param_hint="'--classes'")
    status = backend_status()
    usable = [name for name in names if status[name] is None]
    unavailable = {name: status[name] for name in names if status[name] is not None}
    if not usable:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in unavailable.items())
        raise click.ClickException(f"Nothing to measure: no backend asked for is available ({reasons}).")

    largest = batch_sizes[-1]
    pool = max(classes, min(largest * steps, max(largest, POOL_VALUES // features)))  # every class drawn
    x, y = benchmarking.classification_data(features, classes, pool, seed=seed, dtype=dtype)
    environment = benchmarking.environment(names)

    sizes = " -> ".join(str(width) for width in [features, *hidden, classes])
    click.echo(f"xpann bench: MLP {sizes} (ReLU, softmax + cross-entropy), {optimizer}, {dtype}; "
               f"{report.count(steps, 'step')} x {report.count(repeats, 'repeat')} after {report.count(warmup, 'warm-up step')}, medians")
    for name in names:
        device = environment["backends"][name]
        if not device["available"]:
            click.echo(f"  {name}: unavailable: {device['reason']}")
        elif name == "numpy":
            click.echo(f"  numpy: {environment['cpu']}, {environment['cores']} cores; "
                       f"{benchmarking.describe_blas(device)} (threads used per batch size below)")
        else:
            click.echo(f"  {name}: {device.get('gpu', device.get('device'))}, driver {device.get('cuda_driver')}, "
                       f"CuPy {device.get('cupy')}")

    results = {}
    for name in usable:
        model = benchmarking.build_mlp(features, hidden, classes, optimizer=optimizer, dtype=dtype,
                                       backend=name, seed=seed)
        rows = []
        for batch in batch_sizes:
            per_epoch = max(1, min(steps, pool // batch))
            epochs = math.ceil(steps / per_epoch)
            rows.append(benchmarking.time_training(model, x, y, batch, per_epoch, repeats=repeats,
                                                   warmup_steps=warmup, epochs=epochs))
        results[name] = rows

    cpu = {row["batch_size"]: row["samples_per_second"] for row in results.get("numpy", [])}
    gpu = {row["batch_size"]: row["samples_per_second"] for row in results.get("cupy", [])}
    speedup = {batch: gpu[batch] / cpu[batch] for batch in batch_sizes if batch in cpu and batch in gpu}
    crossover = benchmarking.crossover(cpu, gpu) if cpu and gpu else None

    header = ["batch"]
    for name in names:
        header += [f"{name} samples/s", f"{name} step"] + (["BLAS threads"] if name == "numpy" else [])
    header.append("GPU/CPU")
    table = [header]
    by_batch = {name: {row["batch_size"]: row for row in rows} for name, rows in results.items()}
    for batch in batch_sizes:
        line = [str(batch)]
        for name in names:
            row = by_batch.get(name, {}).get(batch)
            line += [f"{row['samples_per_second']:,.0f}", _duration(row["step_seconds"])] if row else ["-", "-"]
            if name == "numpy":
                line.append(_threads(row))
        line.append(f"{speedup[batch]:.2f}x" if batch in speedup else "-")
        table.append(line)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    click.echo("")
    for line in table:
        click.echo("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
    click.echo("")
    if not (cpu and gpu):
        missing = [name for name in BACKENDS if name not in results]
        click.echo(f"Crossover: needs both backends measured ({', '.join(missing)} not run).")
    elif crossover is None:
        click.echo("Crossover: the GPU did not win at the largest batch size measured.")
    else:
        click.echo(f"Crossover: the GPU wins from batch size {crossover} on (of those measured).")

    if json_path:
        document = {
            "command": "xpann bench",
            "settings": {"backends": names, "batch_sizes": batch_sizes, "features": features, "hidden": hidden,
                         "classes": classes, "optimizer": optimizer, "dtype": dtype, "steps": steps,
                         "repeats": repeats, "warmup_steps": warmup, "seed": seed},
            "environment": environment,
            "results": results,
            "unavailable": unavailable,
            "speedup_gpu_over_cpu": {str(batch): value for batch, value in speedup.items()},
            "crossover_batch_size": crossover,
        }
        with data.output_stream(json_path) as handle:
            json.dump(document, handle, indent=1)
            handle.write("\n")
        click.echo(f"Wrote {json_path}")
