"""Data-parallel scaling on the CPU: samples/s of ``fit`` at 1, 2 and 4 MPI ranks (the mpich
wheel's ``mpiexec`` beside the interpreter), the same global batch, float32, one BLAS thread per
rank, with the gradient summed whole after backward and in buckets during it
(``XPANN_DIST_OVERLAP=1``, at each ``--buckets`` size), and the cost of the all-reduces against the
step time.

    python benchmarks/compare_distributed.py                 # both configurations, 1, 2, 4 ranks
    python benchmarks/compare_distributed.py --ranks 1,2 --configs tabular-small --buckets 256,4

Each rank count runs in its own ``mpiexec`` job (this script, re-entered as a worker); within a job
the variants' fits alternate (whole, buckets of each size, whole, ...), so a change of the host's
load touches them alike; the load average is recorded before and after each job and after each
round of fits. More ranks than cores oversubscribe the machine: those figures say what the extra
processes cost, not what more machines would give.
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "tabular-small": {"features": 64, "hidden": (128, 128), "classes": 10, "batch": 64, "samples": 16384},
    "mnist-like": {"features": 784, "hidden": (512, 256), "classes": 10, "batch": 256, "samples": 8192},
}
MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
WHOLE = "whole"


def variant_name(bucket_kib):
    return WHOLE if bucket_kib is None else f"buckets of {bucket_kib:g} KiB"


def use_variant(bucket_kib):
    """The gradient summed whole after backward (None), or in buckets of ``bucket_kib`` KiB during it."""
    from xpann.distributed import _training

    os.environ[_training.OVERLAP_VARIABLE] = "0" if bucket_kib is None else "1"
    if bucket_kib is not None:
        _training.BUCKET_BYTES = int(bucket_kib * 1024)


def allreduce_seconds(world, grad, spans, repeats=50):
    """Seconds of one blocking all-reduce of each of ``spans`` of ``grad`` in turn, averaged."""
    for span in spans:
        world.allreduce(grad[span])
    start = time.perf_counter()
    for _ in range(repeats):
        for span in spans:
            world.allreduce(grad[span])
    return (time.perf_counter() - start) / repeats


def time_the_waits():
    """{"seconds": the time spent so far in the gradient reducers' ``finish``}: what of the gradient
    sum is left to wait for after backward (all of it for the whole sum)."""
    from xpann.distributed import _training

    spent = {"seconds": 0.0}
    for reducer in (_training.WholeGradient, _training.GradientBuckets):
        def timed(self, plan, finish=reducer.finish):
            start = time.perf_counter()
            finish(self, plan)
            spent["seconds"] += time.perf_counter() - start

        reducer.finish = timed
    return spent


def worker(config_name, repeats, epochs, buckets):
    import numpy

    import xpann
    from xpann import benchmarking
    from xpann.distributed import _training

    ranks = xpann.distributed.init()
    world = xpann.distributed.world()
    config = CONFIGS[config_name]
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=0.1)
    model = benchmarking.build_mlp(config["features"], config["hidden"], config["classes"], optimizer="adam")
    variants = [None, *buckets]
    for bucket_kib in variants:  # warm-up
        use_variant(bucket_kib)
        model.fit(x, y, epochs=1, batch_size=config["batch"], verbose=0)
    times, waits, loads = {bucket_kib: [] for bucket_kib in variants}, {bucket_kib: [] for bucket_kib in variants}, []
    spent = time_the_waits()
    steps = epochs * -(-config["samples"] // config["batch"])
    for _ in range(repeats):
        for bucket_kib in variants:
            use_variant(bucket_kib)
            world.allreduce(numpy.zeros(1))  # start together
            waited, start = spent["seconds"], time.perf_counter()
            model.fit(x, y, epochs=epochs, batch_size=config["batch"], verbose=0)
            times[bucket_kib].append(time.perf_counter() - start)
            waits[bucket_kib].append((spent["seconds"] - waited) / steps)
        loads.append(os.getloadavg()[0])
    grad = numpy.zeros(model.count_params(), dtype="float32")
    results = []
    for bucket_kib in variants:
        spans = [slice(0, grad.size)] if bucket_kib is None else [
            span for span, _ in _training.gradient_buckets(model._plan, bucket_kib * 1024).values()]
        seconds = statistics.median(times[bucket_kib])
        results.append({"config": config_name, "ranks": ranks, "variant": variant_name(bucket_kib),
                        "bucket_kib": bucket_kib, "buckets": len(spans) if ranks > 1 else 0,
                        "global_batch": config["batch"],
                        "parameters": model.count_params(), "seconds": times[bucket_kib],
                        "samples_per_second": epochs * config["samples"] / seconds,
                        "best_samples_per_second": epochs * config["samples"] / min(times[bucket_kib]),
                        "step_seconds": seconds / steps,
                        "wait_after_backward_seconds": statistics.median(waits[bucket_kib]),
                        "allreduce_seconds": allreduce_seconds(world, grad, spans), "load_averages": loads})
    if xpann.distributed.is_main():
        print(json.dumps(results))


def machine():
    """The CPU's model name (lscpu) and the cores this process may use."""
    try:
        described = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in described.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "an unnamed CPU"
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def table(results):
    """The Markdown table: each variant's samples/s (median and best fit), the median against the
    whole sum at the same rank count (``vs whole``) and against one rank's whole-sum median times
    the ranks (scaling efficiency, where one rank ran)."""
    lines = ["| config | global batch | ranks | gradient sum | buckets per step | samples/s | best fit | vs whole "
             "| scaling efficiency | step | wait after backward | all-reduces of the buckets | all-reduces / step "
             "| load before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        same = [r for r in results if r["config"] == result["config"]]
        single = next((r for r in same if r["ranks"] == 1 and r["variant"] == WHOLE), None)
        whole = next(r for r in same if r["ranks"] == result["ranks"] and r["variant"] == WHOLE)
        efficiency = ("n/a" if single is None else
                      f"{result['samples_per_second'] / (single['samples_per_second'] * result['ranks']):.0%}")
        load = result["load_average_before_after"]
        lines.append(f"| {result['config']} ({result['parameters']:,} parameters) | {result['global_batch']} "
                     f"| {result['ranks']} | {result['variant']} | {result['buckets'] or 'none (one rank)'} "
                     f"| {result['samples_per_second']:,.0f} | {result['best_samples_per_second']:,.0f} "
                     f"| {result['samples_per_second'] / whole['samples_per_second']:.3f} | {efficiency} "
                     f"| {result['step_seconds'] * 1e3:.2f} ms | {result['wait_after_backward_seconds'] * 1e3:.3f} ms "
                     f"| {result['allreduce_seconds'] * 1e3:.3f} ms "
                     f"| {result['allreduce_seconds'] / result['step_seconds']:.0%} "
                     f"| {load[0]:.1f} / {load[1]:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--buckets", default="256,4",
                        help="bucket sizes in KiB of the overlapped gradient sum, besides the whole sum ('' for none)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--suffix", default="", help="appended to the results' file names")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    buckets = [float(size) for size in args.buckets.split(",") if size.strip()]
    if args.worker:
        worker(args.worker, args.repeats, args.epochs, buckets)
        return 0
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "XPANN_BLAS_THREADS": "1"}
    results = []
    for config in args.configs.split(","):
        for ranks in [int(r) for r in args.ranks.split(",")]:
            load = [os.getloadavg()[0]]
            done = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, __file__, "--worker", config,
                                   "--repeats", str(args.repeats), "--epochs", str(args.epochs),
                                   "--buckets", args.buckets],
                                  capture_output=True, text=True, env=environment, check=True)
            load.append(os.getloadavg()[0])
            for result in json.loads(done.stdout.strip().splitlines()[-1]):
                result["load_average_before_after"] = load
                results.append(result)
                print(f"{config} {ranks} rank(s), {result['variant']}: {result['samples_per_second']:,.0f} samples/s, "
                      f"step {result['step_seconds'] * 1e3:.2f} ms, "
                      f"wait {result['wait_after_backward_seconds'] * 1e3:.3f} ms, "
                      f"all-reduces {result['allreduce_seconds'] * 1e3:.3f} ms, load {load[0]:.1f} / {load[1]:.1f}",
                      flush=True)
    today = datetime.date.today().isoformat()
    text = "\n".join([
        f"# Data-parallel scaling on the CPU ({today})", "",
        f"{machine()}; MPICH (the mpich wheel); one BLAS thread per rank; Adam, float32; medians of {args.repeats} "
        f"fits of {args.epochs} epochs per variant (and the best fit), the variants' fits alternating within each job. "
        "\"gradient sum\": whole after backward, or in buckets posted during backward (XPANN_DIST_OVERLAP=1). "
        "\"wait after backward\": per step, the time from the end of backward until the gradient is summed "
        "(median over the fits). \"all-reduces of the buckets\": one blocking all-reduce of each bucket in turn, "
        "timed alone.", "",
        table(results), ""])
    print(text)
    stem = pathlib.Path(args.out) / f"compare_distributed_{today}{'_' + args.suffix if args.suffix else ''}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
