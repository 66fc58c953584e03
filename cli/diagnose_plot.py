"""The ``xpann diagnose --plot`` figure: per-layer gradient norms against epoch, one panel per set-up,
and the training losses."""

import math


def plot(pyplot, results, path, steps_per_epoch):
    """One panel per set-up: each layer's gradient norm against epoch (root mean square over the last
    half epoch of steps), log scale, coloured from the first layer (dark) to the last (light); a red
    cross where it stops being finite."""
    from matplotlib import cm

    count = len(results) + 1  # and a panel of the training losses
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), sharey=True, squeeze=False)
    finite = [layer["grad_norm"] for result in results for record in result["steps"] for layer in record["layers"]
              if math.isfinite(layer["grad_norm"]) and layer["grad_norm"] > 0]
    low, high = (min(finite), max(finite)) if finite else (1e-8, 1.0)
    smooth = max(1, steps_per_epoch // 2)
    for axis, result in zip(axes.flat, results):
        steps = result["steps"]
        names = [layer["name"] for layer in steps[0]["layers"]] if steps else []
        colours = cm.viridis([i / max(1, len(names) - 1) for i in range(len(names))])
        broken = None
        for i, name in enumerate(names):
            shown, window = [], []
            for record in steps:
                epoch, value = (record["step"] - 1) / steps_per_epoch, record["layers"][i]["grad_norm"]
                if not math.isfinite(value):
                    broken = epoch if broken is None else min(broken, epoch)
                    break
                window = (window + [value * value])[-smooth:]  # RMS over the last half epoch of steps
                shown.append((epoch, max(math.sqrt(sum(window) / len(window)), low)))
            if shown:
                axis.plot(*zip(*shown), color=colours[i], linewidth=0.9,
                          label=name if i in (0, len(names) - 1) else None)
        if broken is not None:
            axis.axvline(broken, color="red", linestyle="--", linewidth=1)
            axis.plot([broken], [high], marker="x", color="red", markersize=10, markeredgewidth=2)
            axis.annotate(f"inf/NaN at step {round(broken * steps_per_epoch) + 1}: stopped", (broken, high),
                          xytext=(6, -14), textcoords="offset points", color="red", fontsize=8)
        axis.set_yscale("log")
        axis.set_xlim(0, max(1.0, max(((r["step"] - 1) / steps_per_epoch for r in steps), default=1.0)))
        axis.set_title(f"{result['setup'].description}\n{result['verdict'].split(' (')[0]}", fontsize=9,
                       color="red" if result["verdict"] != "learns" else "black")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3, which="both", linewidth=0.4)
        if names:
            axis.legend(fontsize=7, loc="upper right", title="layer", title_fontsize=7)
    for axis in axes[:, 0]:
        axis.set_ylabel("gradient norm per layer")
    axes[0, 0].set_ylim(low / 3, high * 30)
    losses = list(axes.flat)[count - 1]
    losses.remove()
    losses = figure.add_subplot(rows, columns, count)
    for result in results:
        values = result["loss"]
        shown = [(epoch + 1, value) for epoch, value in enumerate(values) if math.isfinite(value)]
        line, = losses.plot(*zip(*shown), marker="." if len(shown) < 3 else None) if shown else losses.plot([], [])
        line.set_label(result["setup"].label + ("" if len(shown) == len(values) else " (inf/NaN, stopped)"))
    losses.set_title("training loss per set-up", fontsize=9)
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.set_yscale("log")
    losses.grid(alpha=0.3, which="both", linewidth=0.4)
    losses.legend(fontsize=7)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    figure.suptitle("Per-layer gradient norms (first layer dark, last layer light)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
