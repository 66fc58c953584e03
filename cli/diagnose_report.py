"""The tables ``xpann diagnose`` prints and the JSON document it writes, from the results of its set-ups."""

import math

import click

from xpann.diagnostics import records_to_json

from . import data, report

# ----- tables --------------------------------------------------------------------------------


def _norm(value):
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.1e}"


def _percent(value):
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def _pick(count, most=5):
    """Up to ``most`` indices spread over range(count), first and last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _summary(result, baseline):
    losses, metric = result["loss"], result["metric"]
    last = result["metric_values"][-1] if result["metric_values"] else float("nan")
    return (f"loss {losses[0]:.3f} (epoch 1) -> {losses[-1]:.3f} (epoch {len(losses)}), {metric} "
            f"{last:.3f}; a constant guess scores loss {baseline:.3f}: {result['verdict']}.")


def print_single(result, baseline):
    records = result["records"]
    setup = result["setup"]
    click.echo(f"Set-up: {setup.description}. {_summary(result, baseline)}")
    click.echo("")
    chosen = _pick(len(records))
    first, last = records[0], records[-1]
    header = ["layer", "activation"] + [f"|grad| ep {records[i]['epoch'] + 1}" for i in chosen] + [
        f"dead ep 1->{last['epoch'] + 1}", f"saturated ep 1->{last['epoch'] + 1}", "update/weight"]
    rows = []
    for position, layer in enumerate(first["layers"]):
        at_end = last["layers"][position]
        rows.append([layer["name"], layer["activation"]]
                    + [_norm(records[i]["layers"][position]["grad_norm"]) for i in chosen]
                    + [_change(layer["dead_fraction"], at_end["dead_fraction"]),
                       _change(layer["saturated_fraction"], at_end["saturated_fraction"]),
                       _norm(at_end["update_ratio"])])
    click.echo("Gradient norm per layer (root mean square over each epoch's batches), dead and saturated units:")
    click.echo(report.table(rows, header=header))
    _print_warnings([result])


def _change(start, end):
    if start is None and end is None:
        return "-"
    return f"{_percent(start)} -> {_percent(end)}"


def print_comparison(results, baseline):
    for result in results:
        click.echo(f"{result['setup'].label:>16}: {result['setup'].description}")
    click.echo("")
    labels = [result["setup"].label for result in results]
    names = [layer["name"] for layer in results[0]["records"][0]["layers"]]

    def block(title, pick):
        click.echo(title)
        rows = [[name] + [_norm(pick(result, position)) for result in results] for position, name in enumerate(names)]
        click.echo(report.table(rows, header=["layer"] + labels))
        click.echo("")

    block("Gradient norm per layer at the first step (the initialisation):",
          lambda result, i: result["steps"][0]["layers"][i]["grad_norm"] if result["steps"] else None)
    block("Gradient norm per layer over the last epoch (root mean square over its batches):",
          lambda result, i: result["records"][-1]["layers"][i]["grad_norm"])
    rows = [
        ["first / last layer |grad| (step 1)"] + [_norm(_ratio(result)) for result in results],
        ["dead units, worst layer (last epoch)"] + [_percent(_worst(result, "dead_fraction")) for result in results],
        ["saturated, worst hidden layer"] + [_percent(_worst(result, "saturated_fraction", hidden=True))
                                             for result in results],
        ["loss, epoch 1"] + [f"{result['loss'][0]:.3f}" for result in results],
        [f"loss, last epoch (constant guess {baseline:.3f})"] + [f"{result['loss'][-1]:.3f}" for result in results],
        [f"{results[0]['metric']}, last epoch"] + [f"{result['metric_values'][-1]:.3f}" for result in results],
        ["epochs run"] + [str(len(result["loss"])) for result in results],
        ["warnings"] + [", ".join(result["kinds"]) or "none" for result in results],
        ["verdict"] + [result["verdict"].split(" (")[0] for result in results],
    ]
    click.echo("Summary:")
    click.echo(report.table(rows, header=[""] + labels))
    _print_warnings(results)


def _ratio(result):
    if not result["steps"]:
        return None
    layers = result["steps"][0]["layers"]
    first, last = layers[0]["grad_norm"], layers[-1]["grad_norm"]
    if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
        return None
    return first / last


def _worst(result, key, hidden=False):
    layers = result["records"][-1]["layers"]
    if hidden:
        layers = layers[:-1]
    values = [layer[key] for layer in layers if layer[key] is not None and math.isfinite(layer[key])]
    return max(values) if values else None


def _print_warnings(results):
    lines = [(result["setup"].label, text) for result in results for text in result["warnings"]]
    if not lines:
        click.echo("\nNo training-health warnings.")
        return
    click.echo("\nWarnings raised during training:")
    for label, text in lines:
        click.echo(f"  [{label}] {text}" if len(results) > 1 else f"  {text}")


# ----- JSON ----------------------------------------------------------------------------------


def write_json(path, results, source, depth, width, optimizer, lr, epochs, batch_size, seed, baseline):
    document = {
        "data": source, "depth": depth, "width": width, "optimizer": optimizer, "learning_rate": lr,
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "constant_guess_loss": baseline,
        "setups": [],
    }
    for result in results:
        setup = result["setup"]
        names = [layer["name"] for layer in result["steps"][0]["layers"]] if result["steps"] else []
        document["setups"].append({
            "label": setup.label, "activation": setup.activation, "init": setup.init, "init_scale": setup.scale,
            "verdict": result["verdict"], "loss": result["loss"], result["metric"]: result["metric_values"],
            "warnings": result["warnings"], "records": result["records"],
            "step_grad_norms": {
                "step": [record["step"] for record in result["steps"]],
                "layers": {name: [record["layers"][i]["grad_norm"] for record in result["steps"]]
                           for i, name in enumerate(names)},
            },
        })
    text = records_to_json(document)
    with data.output_stream(path) as handle:
        handle.write(text + "\n")
