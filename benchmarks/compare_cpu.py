"""Side by side on the CPU, in one process: the same training in xpann (NumPy backend, through
``model.fit``), PyTorch (eager) and scikit-learn's MLPClassifier.

Same layer sizes, initial weights (xpann's, copied), data, optimizer and hyperparameters, batch
size, float32 and a shuffle per epoch. The libraries take turns (the order rotates every repeat) so
that they share the machine's noise; each figure is a median over the repeats. The same run
measures this machine's float32 matrix-product (GEMM) rate and reports each library's training
step against the time its matrix products alone would take at that rate.

    python benchmarks/compare_cpu.py                      # everything, results to benchmarks/results/
    python benchmarks/compare_cpu.py --quick --no-save    # a short smoke run
    python benchmarks/compare_cpu.py --libraries xpann_baseline --baseline OLD_CHECKOUT   # before/after

``--baseline DIR`` imports the xpann package of another checkout (an older commit: ``git worktree
add DIR COMMIT``) under the name ``xpann_baseline`` and runs it in the same rotation, so a change is
measured against the code before it in one process, interleaved.

Run it with the BLAS left to pick its kernel for the CPU (no OPENBLAS_CORETYPE override): the
kernel and thread counts are recorded with the results.
"""

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings

import numpy
from threadpoolctl import threadpool_info, threadpool_limits

# Loaded first, so that every thread limit below applies to their BLAS and OpenMP pools too (a
# library loaded inside a threadpool_limits() block keeps its default thread count).
for _module in ("torch", "sklearn.neural_network"):
    try:
        __import__(_module)
    except ImportError:
        pass

import xpann
from xpann import benchmarking

try:
    from xpann.backend._threads import PARALLEL_MIN_WORK
except ImportError:  # an xpann without a thread policy
    PARALLEL_MIN_WORK = 0

CONFIGS = {
    "tabular-small": {"features": 64, "hidden": (128, 128), "classes": 10, "batch": 64, "samples": 16384},
    "mnist-like": {"features": 784, "hidden": (512, 256), "classes": 10, "batch": 256, "samples": 8192},
}
OPTIMIZERS = {
    "sgd": {"learning_rate": 0.01},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
}
LABEL_NOISE = 0.1
"""Share of labels redrawn at random, so that the training loss stays well above zero and the
final losses of the three libraries can be compared."""
PAUSE = 0.05
"""Seconds of idle between two timed runs, so that one library's spinning worker threads (OpenBLAS,
OpenMP) have gone to sleep before the next library starts."""


# ----- the three trainings -----------------------------------------------------------------------


class Xpann:
    name = "xpann"

    def __init__(self, config, optimizer, x, y, forced_threads=None, generic=False, package=None):
        self.x, self.y, self.batch = x, y, config["batch"]
        self.forced_threads = forced_threads
        if forced_threads:
            self.name = f"xpann-{forced_threads}t"
        if generic:
            self.name = "xpann_generic"
        library = xpann if package is None else package
        if package is not None:
            self.name = "xpann_baseline"
        self.model = library.Sequential(
            [*(library.layers.Dense(width, activation="relu") for width in config["hidden"]),
             library.layers.Dense(config["classes"], activation="softmax")],
            input_dim=config["features"], seed=0, backend="numpy")
        optimizer_class = {"sgd": library.optimizers.SGD, "adam": library.optimizers.Adam}[optimizer]
        self.model.compile(optimizer=optimizer_class(**OPTIMIZERS[optimizer]),
                           loss="sparse_categorical_crossentropy")
        # the layers' kernels sit in the step plan's nodes (in versions before the plan, on the layers)
        plan = getattr(self.model, "plan", None)
        holders = plan.nodes if plan is not None else self.model.layers
        relu = "fused_relu" if plan is not None else "_fused_relu"
        self.fused = getattr(self.model.optimizer, "_fused", None) is not None or any(
            getattr(holder, relu, None) is not None for holder in holders)
        if generic:  # the array code instead of the fused kernels (numba), as where numba is missing
            self.model.optimizer._fused = None
            for holder in holders:
                if hasattr(holder, relu):
                    setattr(holder, relu, None)

    def initial_weights(self):
        return self.model.get_weights()

    def run(self, epochs):
        with _environment("XPANN_BLAS_THREADS", str(self.forced_threads) if self.forced_threads else None):
            self.model.fit(self.x, self.y, epochs=epochs, batch_size=self.batch, shuffle=True, verbose=0)

    def threads_policy(self):
        """The BLAS thread count xpann's policy picks for this model and batch size on an idle
        machine (the count in force when the process allows no more)."""
        plan = getattr(self.model, "plan", None)
        products = plan.matmul_products(self.batch) if plan is not None else (
            self.model._matmul_products(self.batch) if hasattr(self.model, "_matmul_products") else None)
        allowed = min((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=None)
        if products is None or allowed is None:
            return allowed
        if self.forced_threads:
            return self.forced_threads
        return allowed if max(m * n * k for m, n, k in products) >= PARALLEL_MIN_WORK else 1

    def threads_steps(self):
        """Steps run at each BLAS thread count in the last fit (xpann versions that record it)."""
        plan = getattr(self.model, "_thread_plan", None)
        return dict(plan.steps) if plan is not None else {}

    def loss(self):
        return self.model.evaluate(self.x, self.y)["loss"]


class Torch:
    """PyTorch eager on ``device`` (the CPU here; compare_gpu.py runs it on CUDA), with ``threads``
    CPU threads when given, and for Adam its ``fused=True`` implementation when ``fused``."""

    name = "torch"

    def __init__(self, config, optimizer, x, y, weights, threads, device="cpu", fused=False):
        import torch

        self.torch, self.threads = torch, threads
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.x = torch.from_numpy(x).to(self.device)
        self.y = torch.from_numpy(y.astype(numpy.int64)).to(self.device)
        self.batch = config["batch"]
        sizes = [config["features"], *config["hidden"], config["classes"]]
        modules = []
        for index in range(len(sizes) - 1):
            linear = torch.nn.Linear(sizes[index], sizes[index + 1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(numpy.ascontiguousarray(weights[2 * index].T)))
                linear.bias.copy_(torch.from_numpy(weights[2 * index + 1]))
            modules.append(linear)
            if index < len(sizes) - 2:
                modules.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*modules).to(self.device)
        options = OPTIMIZERS[optimizer]
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=options["learning_rate"])
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options["learning_rate"],
                                              betas=(options["beta_1"], options["beta_2"]), eps=options["epsilon"],
                                              **({"fused": True} if fused else {}))
        self.generator = torch.Generator(device=self.device).manual_seed(0)

    def run(self, epochs):
        torch = self.torch
        if self.threads:
            torch.set_num_threads(self.threads)
        n, batch = self.x.shape[0], self.batch
        loss_function = torch.nn.functional.cross_entropy
        for _ in range(epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            x_epoch, y_epoch = self.x[order], self.y[order]
            for start in range(0, n, batch):
                self.optimizer.zero_grad(set_to_none=True)
                loss = loss_function(self.model(x_epoch[start:start + batch]), y_epoch[start:start + batch])
                loss.backward()
                self.optimizer.step()

    def loss(self):
        with self.torch.no_grad():
            return float(self.torch.nn.functional.cross_entropy(self.model(self.x), self.y))


class Sklearn:
    name = "sklearn"

    def __init__(self, config, optimizer, x, y, weights):
        from sklearn.neural_network import MLPClassifier

        self.x, self.y = x, y
        options = OPTIMIZERS[optimizer]
        extra = {"momentum": 0.0, "nesterovs_momentum": False} if optimizer == "sgd" else {
            "beta_1": options["beta_1"], "beta_2": options["beta_2"], "epsilon": options["epsilon"]}
        self.model = MLPClassifier(
            hidden_layer_sizes=config["hidden"], activation="relu", solver=optimizer, alpha=0.0,
            batch_size=config["batch"], learning_rate="constant", learning_rate_init=options["learning_rate"],
            max_iter=1, shuffle=True, random_state=0, tol=0.0, n_iter_no_change=10**9,
            early_stopping=False, warm_start=True, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(x, y)  # builds the attributes; the weights are replaced below
        self.model.coefs_ = [w.copy() for w in weights[0::2]]
        self.model.intercepts_ = [b.copy() for b in weights[1::2]]

    def run(self, epochs):
        self.model.max_iter = epochs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
            self.model.fit(self.x, self.y)

    def dtype(self):
        return str(self.model.coefs_[0].dtype)

    def loss(self):
        probabilities = self.model.predict_proba(self.x).astype(numpy.float64)
        picked = probabilities[numpy.arange(len(self.y)), self.y]
        return float(-numpy.log(numpy.clip(picked, 1e-7, 1.0)).mean()) + 0.0  # no -0.0


@contextlib.contextmanager
def _environment(name, value):
    previous = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


# ----- measuring ---------------------------------------------------------------------------------


def step_products(config):
    """(m, n, k, layout) of each matrix product in one training step, in the layouts the three
    libraries use: forward x @ W, kernel gradient x.T @ g, input gradient g @ W.T (not for the
    first layer)."""
    sizes = [config["features"], *config["hidden"], config["classes"]]
    rows = config["batch"]
    products = []
    for index in range(len(sizes) - 1):
        fan_in, fan_out = sizes[index], sizes[index + 1]
        products.append((rows, fan_out, fan_in, "NN"))
        products.append((fan_in, fan_out, rows, "TN"))
        if index:
            products.append((rows, fan_in, fan_out, "NT"))
    return products


def products_seconds(products, repeats=7):
    """Median seconds of the step's matrix products run back to back in NumPy, in their layouts."""
    rng = numpy.random.default_rng(0)
    operands = []
    for m, n, k, layout in products:
        a = rng.standard_normal((k, m), dtype=numpy.float32).T if layout[0] == "T" else \
            rng.standard_normal((m, k), dtype=numpy.float32)
        b = rng.standard_normal((n, k), dtype=numpy.float32).T if layout[1] == "T" else \
            rng.standard_normal((k, n), dtype=numpy.float32)
        operands.append((a, b, numpy.empty((m, n), dtype=numpy.float32)))

    def once():
        for a, b, out in operands:
            numpy.matmul(a, b, out=out)

    once()
    start = time.perf_counter()
    once()
    count = max(1, int(0.02 / max(time.perf_counter() - start, 1e-6)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            once()
        times.append((time.perf_counter() - start) / count)
    return statistics.median(times)


def import_baseline(directory):
    """The xpann package of the checkout ``directory``, imported as ``xpann_baseline``."""
    init = os.path.join(os.path.abspath(directory), "xpann", "__init__.py")
    if not os.path.exists(init):
        raise SystemExit(f"--baseline {directory}: no xpann/__init__.py there")
    spec = importlib.util.spec_from_file_location("xpann_baseline", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["xpann_baseline"] = module
    spec.loader.exec_module(module)
    return module


def measure(config_name, optimizer, threads, repeats, epochs, libraries, rates, baseline=None):
    config = CONFIGS[config_name]
    x, y = benchmarking.classification_data(config["features"], config["classes"], config["samples"], seed=0,
                                            noise=LABEL_NOISE)
    steps = -(-config["samples"] // config["batch"])
    products = step_products(config)
    flops = 2.0 * sum(m * n * k for m, n, k, _ in products)
    with threadpool_limits(limits=threads, user_api="blas"):
        runners = [Xpann(config, optimizer, x, y)]
        weights = runners[0].initial_weights()
        chosen = runners[0].threads_policy()
        if chosen is not None and chosen != threads:
            runners.append(Xpann(config, optimizer, x, y, forced_threads=threads))
        if "xpann_generic" in libraries and runners[0].fused:
            runners.append(Xpann(config, optimizer, x, y, generic=True))
        if "xpann_baseline" in libraries:
            runners.append(Xpann(config, optimizer, x, y, package=baseline))
        if "torch" in libraries:
            runners.append(Torch(config, optimizer, x, y, weights, threads))
        if "sklearn" in libraries:
            runners.append(Sklearn(config, optimizer, x, y, weights))
        for runner in runners:  # warm-up: first allocations, thread pools, lazy imports
            runner.run(1)
            time.sleep(PAUSE)
        times = {runner.name: [] for runner in runners}
        thread_steps = {}
        load = [os.getloadavg()[0]]
        for repeat in range(repeats):
            turn = repeat % len(runners)
            for runner in runners[turn:] + runners[:turn]:
                start = time.perf_counter()
                runner.run(epochs)
                times[runner.name].append(time.perf_counter() - start)
                if runner is runners[0]:
                    for count, steps_run in runner.threads_steps().items():
                        thread_steps[str(count)] = thread_steps.get(str(count), 0) + steps_run
                time.sleep(PAUSE)
        load.append(os.getloadavg()[0])
        alone = products_seconds(products)
        losses = {runner.name: runner.loss() for runner in runners}
    gemm_seconds = flops / rates[threads]
    result = {
        "config": config_name, **{key: (list(value) if isinstance(value, tuple) else value)
                                  for key, value in config.items()},
        "optimizer": optimizer, "threads": threads, "epochs_per_repeat": epochs, "steps_per_epoch": steps,
        "step_flops": flops, "gemm_rate_flops": rates[threads], "step_gemm_seconds_at_rate": gemm_seconds,
        "step_products_seconds": alone, "xpann_blas_threads": chosen, "xpann_blas_threads_steps": thread_steps,
        "load_average_before_after": load, "xpann_fused_optimizer": runners[0].fused, "libraries": {},
    }
    for runner in runners:
        seconds = statistics.median(times[runner.name])
        step = seconds / (epochs * steps)
        result["libraries"][runner.name] = {
            "seconds": times[runner.name],
            "samples_per_second": epochs * config["samples"] / seconds,
            "step_seconds": step,
            "step_over_gemm_at_rate": step / gemm_seconds,
            "step_over_products_alone": step / alone,
            "final_training_loss": losses[runner.name],
        }
        if runner.name == "sklearn":
            result["libraries"][runner.name]["dtype"] = runner.dtype()
    base = result["libraries"]["xpann"]["samples_per_second"]
    result["xpann_speedup"] = {name: base / entry["samples_per_second"]
                               for name, entry in result["libraries"].items() if name != "xpann"}
    return result


def gemm_rates(thread_counts, size=2048):
    rates = {}
    backend = xpann.backend.resolve_backend("numpy")
    for threads in thread_counts:
        with threadpool_limits(limits=threads, user_api="blas"):
            rates[threads] = benchmarking.gemm_rate(backend, "float32", size=size, repeats=7)
    return rates


# ----- reporting ---------------------------------------------------------------------------------


def environment():
    info = benchmarking.environment(("numpy",))
    try:
        import torch

        info["torch"] = {"version": torch.__version__, "threads_default": torch.get_num_threads(),
                         "mkl": torch.backends.mkl.is_available(),
                         "parallel": torch.__config__.parallel_info().splitlines()[-1].strip()}
    except ImportError:
        pass
    info["blas_pools"] = [{**{key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")},
                           "library_file": os.path.basename(pool.get("filepath") or "")}
                          for pool in threadpool_info() if pool["user_api"] == "blas"]
    info["environment_variables"] = {name: os.environ.get(name) for name in (
        "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
        "XPANN_BLAS_THREADS", "XPANN_FUSED")}
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    return info


def threads_text(result):
    """The thread counts xpann's timed steps ran on: "1", or "2 (90%), 1 (10%)" when it varied."""
    steps = result.get("xpann_blas_threads_steps") or {}
    total = sum(steps.values())
    if not total:
        return str(result["xpann_blas_threads"])
    if len(steps) == 1:
        return next(iter(steps))
    return ", ".join(f"{count} ({share / total:.0%})" for count, share in
                     sorted(steps.items(), key=lambda item: -item[1]))


def numpy_blas_line(info):
    numpy_info = info["backends"].get("numpy", {})
    pools = numpy_info.get("blas") or []
    return ", ".join(f"{pool.get('library')} {pool.get('version')} ({pool.get('architecture')} kernel)"
                     for pool in pools) or "unknown"


def markdown(results, info, rates, title):
    versions = info["libraries"]
    lines = [
        f"# {title}",
        "",
        f"- Date: {info['date']}",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), {info['platform']}",
        f"- NumPy BLAS: {numpy_blas_line(info)}; float32 GEMM rate "
        + ", ".join(f"{rate / 1e9:.0f} GFLOP/s on {threads} thread{'s' if threads > 1 else ''}"
                    for threads, rate in sorted(rates.items())),
        f"- Versions: xpann {versions.get('xpann')}, numpy {versions.get('numpy')}, torch {versions.get('torch')}, "
        f"scikit-learn {versions.get('scikit-learn')}, Python {info['python']}, "
        f"numba {info.get('numba') or 'not installed'} (fused kernels "
        f"{'on' if any(result.get('xpann_fused_optimizer') for result in results) else 'off'})",
        f"- Figures: medians of {results[0]['libraries']['xpann']['seconds'].__len__()} interleaved repeats of "
        f"{results[0]['epochs_per_repeat']} epoch(s); samples/s of the whole fit (shuffle included).",
        "",
        "| config | optimizer | threads | xpann samples/s | torch samples/s | sklearn samples/s "
        "| xpann / torch | xpann / sklearn | xpann step | step / GEMM at rate (xpann, torch, sklearn) "
        "| xpann BLAS threads (share of steps) | load avg before / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        libraries = result["libraries"]

        def rate(name):
            return f"{libraries[name]['samples_per_second']:,.0f}" if name in libraries else "-"

        def ratio(name):
            return f"{result['xpann_speedup'][name]:.2f}x" if name in result["xpann_speedup"] else "-"

        def over(name):
            return f"{libraries[name]['step_over_gemm_at_rate']:.2f}" if name in libraries else "-"

        step = libraries["xpann"]["step_seconds"] * 1e6
        lines.append(
            f"| {result['config']} | {result['optimizer']} | {result['threads']} | {rate('xpann')} | {rate('torch')} "
            f"| {rate('sklearn')} | {ratio('torch')} | {ratio('sklearn')} | {step:,.0f} us "
            f"| {over('xpann')}, {over('torch')}, {over('sklearn')} | {threads_text(result)} "
            f"| {result['load_average_before_after'][0]:.1f} / {result['load_average_before_after'][1]:.1f} |")
    baseline = [result for result in results if "xpann_baseline" in result["libraries"]]
    if baseline:
        lines += ["", "xpann now and the baseline checkout (before the change), in the same run:", "",
                  "| config | optimizer | threads | now samples/s | baseline samples/s | now / baseline |",
                  "|---|---|---|---|---|---|"]
        for result in baseline:
            libraries = result["libraries"]
            now, before = libraries["xpann"]["samples_per_second"], libraries["xpann_baseline"]["samples_per_second"]
            lines.append(f"| {result['config']} | {result['optimizer']} | {result['threads']} | {now:,.0f} "
                         f"| {before:,.0f} | {now / before:.3f} |")
    generic = [result for result in results if "xpann_generic" in result["libraries"]]
    if generic:
        lines += ["", "xpann with its fused kernels (numba: optimizer update, ReLU passes) and with its array "
                  "code alone (the path without numba), in the same run:", "",
                  "| config | optimizer | threads | fused samples/s | array code samples/s | fused / array code "
                  "| array code / torch |", "|---|---|---|---|---|---|---|"]
        for result in generic:
            libraries = result["libraries"]
            fused, plain = libraries["xpann"]["samples_per_second"], libraries["xpann_generic"]["samples_per_second"]
            versus = (f"{plain / libraries['torch']['samples_per_second']:.2f}x" if "torch" in libraries else "-")
            lines.append(f"| {result['config']} | {result['optimizer']} | {result['threads']} | {fused:,.0f} "
                         f"| {plain:,.0f} | {fused / plain:.2f}x | {versus} |")
    forced = [(result, name) for result in results for name in result["libraries"] if name.startswith("xpann-")]
    if forced:
        lines += ["", "xpann with its thread choice overridden (XPANN_BLAS_THREADS = the budget):", "",
                  "| config | optimizer | budget | policy samples/s (threads) | forced samples/s |",
                  "|---|---|---|---|---|"]
        for result, name in forced:
            policy = result["libraries"]["xpann"]["samples_per_second"]
            lines.append(f"| {result['config']} | {result['optimizer']} | {result['threads']} "
                         f"| {policy:,.0f} ({result['xpann_blas_threads']}) "
                         f"| {result['libraries'][name]['samples_per_second']:,.0f} |")
    lines += ["", "Final training loss after the same number of epochs (a check that all three trained alike):",
              "", "| config | optimizer | threads | xpann | torch | sklearn |", "|---|---|---|---|---|---|"]
    for result in results:
        losses = [f"{result['libraries'][name]['final_training_loss']:.4f}" if name in result["libraries"] else "-"
                  for name in ("xpann", "torch", "sklearn")]
        lines.append(f"| {result['config']} | {result['optimizer']} | {result['threads']} | "
                     + " | ".join(losses) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--libraries", default="torch,sklearn",
                        help="besides xpann; xpann_generic adds xpann with its array code instead of the fused "
                             "kernels (when numba is installed)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed repeat")
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--name", default=None, help="file name stem (default compare_cpu_<date>)")
    parser.add_argument("--title", default="xpann vs PyTorch vs scikit-learn on the CPU")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--baseline", metavar="DIR", help="a checkout whose xpann runs beside this one "
                                                          "(with --libraries xpann_baseline)")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    optimizers = [name.strip() for name in args.optimizers.split(",") if name.strip()]
    thread_counts = [int(value) for value in args.threads.split(",") if value.strip()]
    libraries = {name.strip() for name in args.libraries.split(",") if name.strip()}
    if ("xpann_baseline" in libraries) != bool(args.baseline):
        parser.error("--libraries xpann_baseline and --baseline DIR go together")
    baseline = import_baseline(args.baseline) if args.baseline else None
    for name in configs:
        if name not in CONFIGS:
            parser.error(f"unknown config {name!r}; known: {', '.join(CONFIGS)}")

    info = environment()
    print(f"{info['cpu']}, {info['cores']} cores; NumPy BLAS: {numpy_blas_line(info)}", flush=True)
    rates = gemm_rates(thread_counts)
    for threads, rate in sorted(rates.items()):
        print(f"float32 GEMM rate, {threads} thread(s): {rate / 1e9:.0f} GFLOP/s", flush=True)
    results = []
    for config_name in configs:
        for optimizer in optimizers:
            for threads in thread_counts:
                result = measure(config_name, optimizer, threads, repeats, args.epochs, libraries, rates, baseline)
                results.append(result)
                parts = [f"{name} {entry['samples_per_second']:,.0f}/s ({entry['step_seconds'] * 1e6:,.0f} us, "
                         f"{entry['step_over_gemm_at_rate']:.2f}x GEMM)" for name, entry in result["libraries"].items()]
                speedups = ", ".join(f"{value:.2f}x {name}" for name, value in result["xpann_speedup"].items())
                print(f"{config_name} {optimizer} {threads}t [xpann BLAS threads {threads_text(result)}]: "
                      + "; ".join(parts) + f" | xpann = {speedups}", flush=True)
    rates = {threads: rate for threads, rate in rates.items()}
    text = markdown(results, info, rates, args.title)
    print()
    print(text)
    if not args.no_save:
        save_results(args.out, args.name or f"compare_cpu_{datetime.date.today().isoformat()}", text,
                     {"environment": info, "gemm_rate_flops": {str(k): v for k, v in rates.items()},
                      "settings": {"repeats": repeats, "epochs_per_repeat": args.epochs, "pause_seconds": PAUSE},
                      "results": results})
    return 0


def save_results(folder, stem, text, figures):
    """Write ``figures`` to ``folder/stem.json`` and the markdown ``text`` to ``folder/stem.md``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, stem + ".json"), "w", encoding="utf-8") as handle:
        json.dump(figures, handle, indent=1)
        handle.write("\n")
    with open(os.path.join(folder, stem + ".md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"Wrote {os.path.join(folder, stem)}.json and .md")


if __name__ == "__main__":
    sys.exit(main())
