"""Side by side on one GPU, in one process: the same training in xpann (CuPy backend, through
``model.fit``) and PyTorch (eager, CUDA), as compare_cpu.py does on the CPU.

Same layer sizes, initial weights (xpann's, copied), data (uploaded to the GPU once), optimizer and
hyperparameters, batch size, float32 (no TF32 in either) and a shuffle per epoch. xpann runs twice:
with its CuPy kernels (one launch for the optimizer update, each ReLU pass and the softmax
cross-entropy) and with its array code alone (``XPANN_FUSED=0``). PyTorch runs with its default
optimizer implementation (foreach on CUDA) and, for Adam, also with ``fused=True``; it gathers each
epoch's shuffled data once and slices batches from it, the cheapest eager idiom. The device is
synchronised around every timed run; the runs take turns and each figure is a median. The same run
times the step's matrix products alone on the GPU (cuBLAS through CuPy, row-major operands).

    python benchmarks/compare_gpu.py                      # results to benchmarks/results/
    python benchmarks/compare_gpu.py --quick --no-save    # a short smoke run
    python benchmarks/compare_gpu.py --profile --no-save  # where xpann's host time goes, first
"""

import argparse
import datetime
import math
import os
import statistics
import sys
import time

import xpann
from xpann import benchmarking

from compare_cpu import CONFIGS, LABEL_NOISE, OPTIMIZERS, Torch, _environment, save_results, step_products

BATCHES = {"tabular-small": (64, 1024), "mnist-like": (256, 4096)}
"""Batch sizes per configuration: the issue's (launch-bound for tabular-small) and a large one."""
MIN_STEPS = 256
"""Each timed run trains at least this many steps (whole epochs)."""
MIN_STEPS_PER_EPOCH = 32
"""At large batch sizes the data set grows to this many batches an epoch, so that what fit does once
an epoch (the shuffle, the epoch's loss, the light gradient health check) weighs as it does on a
real data set rather than on two batches."""


class XpannGpu:
    """xpann on CuPy; with ``kernels=False`` its array code alone (``XPANN_FUSED=0``)."""

    def __init__(self, config, optimizer, batch, x, y, kernels=True):
        self.name = "xpann" if kernels else "xpann_array_code"
        self.flag = None if kernels else "0"
        self.batch = batch
        with _environment("XPANN_FUSED", self.flag):
            self.model = benchmarking.build_mlp(config["features"], config["hidden"], config["classes"],
                                                optimizer=_xpann_optimizer(optimizer), backend="cupy", seed=0)
        self.backend = self.model.backend
        self.x, self.y = self.backend.asarray(x), self.backend.asarray(y)

    def initial_weights(self):
        return self.model.get_weights()

    def run(self, epochs):
        with _environment("XPANN_FUSED", self.flag):
            self.model.fit(self.x, self.y, epochs=epochs, batch_size=self.batch, shuffle=True, verbose=0)

    def kernels_used(self):
        return {"optimizer": self.model.optimizer._fused is not None,
                "relu": all(node.fused_relu is not None for node in self.model.plan.nodes[:-1])}

    def synchronize(self):
        self.backend.synchronize()

    def loss(self):
        return self.model.evaluate(self.x, self.y)["loss"]


def _xpann_optimizer(name):
    options = OPTIMIZERS[name]
    return xpann.optimizers.SGD(**options) if name == "sgd" else xpann.optimizers.Adam(**options)


class TorchGpu(Torch):
    def __init__(self, config, optimizer, x, y, weights, fused=False):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        super().__init__(config, optimizer, x, y, weights, threads=None, device="cuda", fused=fused)
        self.name = "torch_fused" if fused else "torch"

    def synchronize(self):
        self.torch.cuda.synchronize()


def measure(config_name, optimizer, batch, repeats, libraries, cupy_backend):
    config = {**CONFIGS[config_name], "batch": batch}
    config["samples"] = max(config["samples"], MIN_STEPS_PER_EPOCH * batch)
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=LABEL_NOISE)
    steps_per_epoch = math.ceil(config["samples"] / batch)
    epochs = max(1, math.ceil(MIN_STEPS / steps_per_epoch))
    runners = [XpannGpu(config, optimizer, batch, x, y)]
    weights = runners[0].initial_weights()
    if "xpann_array_code" in libraries:
        runners.append(XpannGpu(config, optimizer, batch, x, y, kernels=False))
    if "torch" in libraries:
        runners.append(TorchGpu(config, optimizer, x, y, weights))
        if optimizer == "adam":
            runners.append(TorchGpu(config, optimizer, x, y, weights, fused=True))
    for runner in runners:  # warm-up: CUDA context, kernel compilation, first allocations
        runner.run(1)
        runner.synchronize()
    times = {runner.name: [] for runner in runners}
    for repeat in range(repeats):
        turn = repeat % len(runners)
        for runner in runners[turn:] + runners[:turn]:
            runner.synchronize()
            start = time.perf_counter()
            runner.run(epochs)
            runner.synchronize()
            times[runner.name].append(time.perf_counter() - start)
    products = [(m, n, k) for m, n, k, _ in step_products(config)]
    alone = benchmarking.products_time(cupy_backend, products, repeats=7)
    steps = epochs * steps_per_epoch
    result = {
        "config": config_name, "features": config["features"], "hidden": list(config["hidden"]),
        "classes": config["classes"], "samples": config["samples"], "batch": batch, "optimizer": optimizer,
        "epochs_per_repeat": epochs, "steps_per_repeat": steps, "step_flops": benchmarking.product_flops(products),
        "step_products_seconds": alone, "xpann_kernels": runners[0].kernels_used(), "libraries": {},
    }
    for runner in runners:
        seconds = statistics.median(times[runner.name])
        result["libraries"][runner.name] = {
            "seconds": times[runner.name],
            "samples_per_second": epochs * config["samples"] / seconds,
            "step_seconds": seconds / steps,
            "step_over_products_alone": seconds / steps / alone,
            "final_training_loss": runner.loss(),
        }
    base = result["libraries"]["xpann"]["samples_per_second"]
    result["xpann_speedup"] = {name: base / entry["samples_per_second"]
                               for name, entry in result["libraries"].items() if name != "xpann"}
    return result


def profile_fit(config_name, optimizer, batch, top=30):
    """cProfile of xpann's fit on the GPU (host time: a small model's step is bound by it)."""
    import cProfile
    import pstats

    config = {**CONFIGS[config_name], "batch": batch}
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=LABEL_NOISE)
    runner = XpannGpu(config, optimizer, batch, x, y)
    runner.run(1)
    runner.synchronize()
    profiler = cProfile.Profile()
    profiler.enable()
    runner.run(2)
    runner.synchronize()
    profiler.disable()
    print(f"Host time of xpann's fit, {config_name} batch {batch} {optimizer}, 2 epochs "
          f"({2 * math.ceil(config['samples'] / batch)} steps):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def kernel_profile(config_name, optimizer, batch, top=12):
    """The GPU kernels that one epoch of xpann and of PyTorch spend their device time in (read
    through PyTorch's profiler, which sees every kernel of the process, CuPy's included)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    config = {**CONFIGS[config_name], "batch": batch}
    config["samples"] = max(config["samples"], MIN_STEPS_PER_EPOCH * batch)
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=LABEL_NOISE)
    xpann_runner = XpannGpu(config, optimizer, batch, x, y)
    runners = [xpann_runner, TorchGpu(config, optimizer, x, y, xpann_runner.initial_weights())]
    activity = ProfilerActivity.CUDA if torch.cuda.is_available() else ProfilerActivity.CPU
    for runner in runners:
        runner.run(1)
        runner.synchronize()
        with profile(activities=[activity]) as profiler:
            runner.run(1)
            runner.synchronize()
        print(f"Device time by kernel, {runner.name}, {config_name} batch {batch} {optimizer}, one epoch "
              f"({math.ceil(config['samples'] / batch)} steps):")
        table = None
        for key in ("self_device_time_total", "self_cuda_time_total", "self_cpu_time_total"):
            try:
                table = profiler.key_averages().table(sort_by=key, row_limit=top)
                break
            except (AttributeError, KeyError, ValueError):
                continue
        print(table)


def environment():
    info = benchmarking.environment(("numpy", "cupy"))
    try:
        import torch

        info["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda,
                         "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    except ImportError:
        pass
    return info


def markdown(results, info, gemm_rate, title):
    gpu = info["backends"]["cupy"]
    versions = info["libraries"]
    lines = [
        f"# {title}",
        "",
        f"- Date: {info['date']}",
        f"- GPU: {gpu.get('gpu')} ({gpu.get('memory_gib')} GiB), CUDA runtime {gpu.get('cuda_runtime')}, driver "
        f"{gpu.get('cuda_driver')}; float32 GEMM rate through CuPy {gemm_rate / 1e12:.1f} TFLOP/s (4096^3, no TF32)",
        f"- Host: {info['cpu']}, {info['cores']} cores, {info['platform']}",
        f"- Versions: xpann {versions.get('xpann')}, cupy {gpu.get('cupy')}, numpy {versions.get('numpy')}, "
        f"torch {info.get('torch', {}).get('version')}, Python {info['python']}",
        f"- Figures: medians of {len(results[0]['libraries']['xpann']['seconds'])} interleaved repeats, each at least "
        f"{MIN_STEPS} steps (whole epochs of at least {MIN_STEPS_PER_EPOCH} batches, shuffle included), device "
        "synchronised around each repeat.",
        "",
        "| config | batch | optimizer | xpann samples/s | xpann step | torch step | torch fused step "
        "| xpann / torch | xpann / torch fused | xpann step / products alone |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def step(result, name):
        entry = result["libraries"].get(name)
        return f"{entry['step_seconds'] * 1e6:,.0f} us" if entry else "-"

    def ratio(result, name):
        return f"{result['xpann_speedup'][name]:.2f}x" if name in result["xpann_speedup"] else "-"

    for result in results:
        lines.append(
            f"| {result['config']} | {result['batch']} | {result['optimizer']} "
            f"| {result['libraries']['xpann']['samples_per_second']:,.0f} | {step(result, 'xpann')} "
            f"| {step(result, 'torch')} | {step(result, 'torch_fused')} | {ratio(result, 'torch')} "
            f"| {ratio(result, 'torch_fused')} | {result['libraries']['xpann']['step_over_products_alone']:.1f} |")
    if any("xpann_array_code" in result["libraries"] for result in results):
        lines += ["", "xpann with its CuPy kernels (optimizer update, ReLU passes, softmax cross-entropy: one launch "
                  "each) and with its array code alone (XPANN_FUSED=0), in the same run:", "",
                  "| config | batch | optimizer | kernels step | array code step | kernels / array code |",
                  "|---|---|---|---|---|---|"]
        for result in results:
            if "xpann_array_code" in result["libraries"]:
                lines.append(f"| {result['config']} | {result['batch']} | {result['optimizer']} "
                             f"| {step(result, 'xpann')} | {step(result, 'xpann_array_code')} "
                             f"| {ratio(result, 'xpann_array_code')} |")
    names = ["xpann", "xpann_array_code", "torch", "torch_fused"]
    lines += ["", "Final training loss after the same steps (a check that all trained alike):", "",
              "| config | batch | optimizer | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for result in results:
        losses = [f"{result['libraries'][name]['final_training_loss']:.4f}" if name in result["libraries"] else "-"
                  for name in names]
        lines.append(f"| {result['config']} | {result['batch']} | {result['optimizer']} | " + " | ".join(losses) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--libraries", default="torch,xpann_array_code",
                        help="besides xpann: torch (with torch_fused for Adam) and xpann_array_code")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--name", default=None, help="file name stem (default compare_gpu_<date>)")
    parser.add_argument("--title", default="xpann (CuPy) vs PyTorch (CUDA, eager) on one GPU")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--profile", action="store_true", help="first print a profile of xpann's host time "
                        "(tabular-small, batch 64, Adam) and of both libraries' GPU kernels (mnist-like, batch 4096)")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    libraries = {name.strip() for name in args.libraries.split(",") if name.strip()}
    reason = xpann.backend.backend_status()["cupy"]
    if reason is not None:
        print(f"The cupy backend cannot run here: {reason}")
        return 1
    cupy_backend = xpann.backend.resolve_backend("cupy")
    if args.profile:
        profile_fit("tabular-small", "adam", 64)
        try:
            kernel_profile("mnist-like", "adam", 4096)
        except Exception as error:  # the profiler is a diagnostic: the comparison still runs without it
            print(f"No kernel profile: {type(error).__name__}: {error}")
    info = environment()
    gemm_rate = benchmarking.gemm_rate(cupy_backend, "float32", size=4096, repeats=7)
    print(f"{info['backends']['cupy'].get('gpu')}: float32 GEMM {gemm_rate / 1e12:.1f} TFLOP/s", flush=True)
    results = []
    for config_name in [name.strip() for name in args.configs.split(",") if name.strip()]:
        for batch in BATCHES[config_name]:
            for optimizer in [name.strip() for name in args.optimizers.split(",") if name.strip()]:
                result = measure(config_name, optimizer, batch, repeats, libraries, cupy_backend)
                results.append(result)
                parts = [f"{name} {entry['step_seconds'] * 1e6:,.0f} us" for name, entry in result["libraries"].items()]
                print(f"{config_name} batch {batch} {optimizer}: " + "; ".join(parts) + " | xpann = "
                      + ", ".join(f"{value:.2f}x {name}" for name, value in result["xpann_speedup"].items()),
                      flush=True)
    text = markdown(results, info, gemm_rate, args.title)
    print()
    print(text)
    if not args.no_save:
        save_results(args.out, args.name or f"compare_gpu_{datetime.date.today().isoformat()}", text,
                     {"environment": info, "gemm_rate_flops": gemm_rate,
                      "settings": {"repeats": repeats, "min_steps": MIN_STEPS, "min_steps_per_epoch": MIN_STEPS_PER_EPOCH},
                      "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
