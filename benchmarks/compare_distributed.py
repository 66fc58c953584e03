"""Data-parallel scaling on the CPU: samples/s of ``fit`` at 1, 2 and 4 MPI ranks (the mpich
wheel's ``mpiexec`` beside the interpreter), the same global batch, float32, one BLAS thread per
rank, and the cost of one all-reduce of the flat gradient against the step time.

    python benchmarks/compare_distributed.py                 # both configurations, 1, 2, 4 ranks
    python benchmarks/compare_distributed.py --ranks 1,2 --configs tabular-small

Each rank count runs in its own ``mpiexec`` job (this script, re-entered as a worker); the host's
load average is recorded before and after each job. More ranks than cores oversubscribe the
machine: those figures say what the extra processes cost, not what more machines would give.
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


def worker(config_name, repeats, epochs):
    import numpy

    import xpann
    from xpann import benchmarking

    ranks = xpann.distributed.init()
    world = xpann.distributed.world()
    config = CONFIGS[config_name]
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=0.1)
    model = benchmarking.build_mlp(config["features"], config["hidden"], config["classes"], optimizer="adam")
    model.fit(x, y, epochs=1, batch_size=config["batch"], verbose=0)  # warm-up
    times = []
    for _ in range(repeats):
        world.allreduce(numpy.zeros(1))  # start together
        start = time.perf_counter()
        model.fit(x, y, epochs=epochs, batch_size=config["batch"], verbose=0)
        times.append(time.perf_counter() - start)
    grad = numpy.zeros(model.count_params(), dtype="float32")
    world.allreduce(grad)
    start = time.perf_counter()
    for _ in range(50):
        world.allreduce(grad)
    allreduce = (time.perf_counter() - start) / 50
    if xpann.distributed.is_main():
        seconds = statistics.median(times)
        steps = epochs * -(-config["samples"] // config["batch"])
        print(json.dumps({"config": config_name, "ranks": ranks, "global_batch": config["batch"],
                          "parameters": model.count_params(), "seconds": times,
                          "samples_per_second": epochs * config["samples"] / seconds,
                          "step_seconds": seconds / steps, "allreduce_seconds": allreduce}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.repeats, args.epochs)
        return 0
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "XPANN_BLAS_THREADS": "1"}
    results = []
    for config in args.configs.split(","):
        for ranks in [int(r) for r in args.ranks.split(",")]:
            load = [os.getloadavg()[0]]
            done = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, __file__, "--worker", config,
                                   "--repeats", str(args.repeats), "--epochs", str(args.epochs)],
                                  capture_output=True, text=True, env=environment, check=True)
            load.append(os.getloadavg()[0])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["load_average_before_after"] = load
            results.append(result)
            print(f"{config} {ranks} rank(s): {result['samples_per_second']:,.0f} samples/s, step "
                  f"{result['step_seconds'] * 1e3:.2f} ms, all-reduce {result['allreduce_seconds'] * 1e3:.3f} ms",
                  flush=True)
    lines = [f"# Data-parallel scaling on the CPU ({datetime.date.today().isoformat()})", "",
             f"{os.cpu_count()} cores; one BLAS thread per rank; Adam, float32; medians of {args.repeats} fits "
             f"of {args.epochs} epochs.", "",
             "| config | global batch | ranks | samples/s | scaling efficiency | step | all-reduce of the gradient "
             "| all-reduce / step | load before / after |", "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        single = next(r for r in results if r["config"] == result["config"] and r["ranks"] == 1)
        efficiency = result["samples_per_second"] / (single["samples_per_second"] * result["ranks"])
        lines.append(f"| {result['config']} ({result['parameters']:,} parameters) | {result['global_batch']} "
                     f"| {result['ranks']} | {result['samples_per_second']:,.0f} | {efficiency:.0%} "
                     f"| {result['step_seconds'] * 1e3:.2f} ms | {result['allreduce_seconds'] * 1e3:.3f} ms "
                     f"| {result['allreduce_seconds'] / result['step_seconds']:.0%} "
                     f"| {result['load_average_before_after'][0]:.1f} / {result['load_average_before_after'][1]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    stem = pathlib.Path(args.out) / f"compare_distributed_{datetime.date.today().isoformat()}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
