"""Where a training step's time goes: each phase of xpann's step timed on its own (the batch
gather, each layer's forward and backward, the loss, the optimizer), next to the matrix products
alone in the same layouts. It drives the model's own layers and optimizer the way fit does.

    python benchmarks/profile_step.py --config tabular-small --optimizer sgd --threads 1
"""

import argparse
import os
import statistics
import sys
import time

import numpy
from threadpoolctl import threadpool_limits

from xpann import benchmarking

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_cpu import CONFIGS  # noqa: E402


def profile(config_name, optimizer, threads, steps=300, rounds=5):
    config = CONFIGS[config_name]
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=0.1)
    model = benchmarking.build_mlp(config["features"], config["hidden"], config["classes"], optimizer=optimizer)
    backend = model.backend
    x_device, y_device = model._prepare(x, y)
    batch = config["batch"]
    plan, parameters, loss = model.plan, model.parameters, model.loss
    nodes = plan.nodes
    x_batch = numpy.empty((batch, x.shape[1]), dtype=x_device.dtype)
    y_batch = numpy.empty((batch,), dtype=y_device.dtype)
    rng = numpy.random.default_rng(0)
    order = rng.permutation(x.shape[0])
    clock = time.perf_counter

    def step(record):
        start = clock()
        rows = order[:batch]
        xb = backend.take_rows(x_device, rows, out=x_batch)
        yb = backend.take_rows(y_device, rows, out=y_batch)
        now = clock()
        record["gather"] += now - start
        h = xb
        backprops = []
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            h, backprop = node.layer.forward(node, h, True, activate=False) if last else node.layer.forward(node, h, True)
            backprops.append(backprop)
            then = clock()
            record[f"forward {index}"] += then - now
            now = then
        value, grad = loss.logits_value_and_grad(backend, yb, h, reuse=True)
        then = clock()
        record["loss"] += then - now
        now = then
        for index in range(len(nodes) - 1, -1, -1):
            grad = backprops[index](grad)
            then = clock()
            record[f"backward {index}"] += then - now
            now = then
        model.optimizer.apply(parameters.data, parameters.grad, parameters.segments)
        record["optimizer"] += clock() - now

    with threadpool_limits(limits=threads, user_api="blas"):
        if not model.optimizer.built:
            model.optimizer.build(backend, parameters.data)
        with backend.matmul_threads(plan.matmul_products(batch)) as threads:
            names = ["gather", *(f"forward {i}" for i in range(len(nodes))), "loss",
                     *(f"backward {i}" for i in range(len(nodes) - 1, -1, -1)), "optimizer"]
            for _ in range(20):
                step(dict.fromkeys(names, 0.0))
            totals = {name: [] for name in names + ["step"]}
            for _ in range(rounds):
                record = dict.fromkeys(names, 0.0)
                start = clock()
                for _ in range(steps):
                    threads.refresh() if threads is not None else None
                    step(record)
                elapsed = clock() - start
                for name in names:
                    totals[name].append(record[name] / steps)
                totals["step"].append(elapsed / steps)
            used = threads.threads if threads is not None else None
        products = {}
        sizes = [config["features"], *config["hidden"], config["classes"]]
        for index in range(len(sizes) - 1):
            fan_in, fan_out = sizes[index], sizes[index + 1]
            products[f"forward {index}"] = [(batch, fan_out, fan_in)]
            products[f"backward {index}"] = [(fan_in, fan_out, batch)] + ([(batch, fan_in, fan_out)] if index else [])
        with threadpool_limits(limits=used or threads, user_api="blas"):
            alone = {name: benchmarking.products_time(backend, shapes) for name, shapes in products.items()}
    return {name: statistics.median(values) for name, values in totals.items()}, alone, used


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tabular-small", choices=sorted(CONFIGS))
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    medians, alone, used = profile(args.config, args.optimizer, args.threads)
    total = medians["step"]
    print(f"{args.config}, {args.optimizer}, {args.threads} thread budget (BLAS ran on {used}): "
          f"{total * 1e6:.1f} us per step")
    print("| phase | us | share | its matrix products alone, us |")
    print("|---|---|---|---|")
    for name, seconds in medians.items():
        if name == "step":
            continue
        products = f"{alone[name] * 1e6:.1f}" if name in alone else "-"
        print(f"| {name} | {seconds * 1e6:.1f} | {seconds / total:.0%} | {products} |")
    covered = sum(value for name, value in medians.items() if name != "step")
    print(f"| timers' own overhead and the rest | {(total - covered) * 1e6:.1f} | {(total - covered) / total:.0%} | |")
    print(f"| step | {total * 1e6:.1f} | 100% | {sum(alone.values()) * 1e6:.1f} |")


if __name__ == "__main__":
    main()
