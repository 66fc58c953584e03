"""Measuring training speed: timed training with the device synchronised around the timed region,
the machine it ran on, and the matrix-product rate that bounds a training step.

Used by ``xpann bench`` and by the scripts in ``benchmarks/``. Array work goes through a backend's
``xp``; nothing here imports an array module itself.
"""

import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import sys
import time

from .backend import backend_status, fused_kernels_status, resolve_backend

LIBRARIES = ("numpy", "cupy", "cupy-cuda12x", "cupy-cuda13x", "threadpoolctl", "click", "numba", "torch",
             "scikit-learn", "scipy")
"""Packages whose installed versions an environment report lists (when installed)."""


# ----- the machine -------------------------------------------------------------------------------


def cpu_model():
    """The CPU's model name (with family/model numbers when the name is as vague as a VM makes it)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def library_versions():
    """Installed versions of xpann and of the packages in ``LIBRARIES`` that are present."""
    from ._version import __version__

    versions = {"xpann": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def environment(backends=("numpy", "cupy")):
    """Where figures were measured: date, CPU model and cores, OS, Python, library versions, and
    each backend's device facts (BLAS library, kernel and threads; GPU name, memory, driver) or
    the reason it cannot run."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    status = backend_status()
    devices = {}
    for name in backends:
        reason = status.get(name, f"unknown backend {name!r}")
        devices[name] = {"available": False, "reason": reason} if reason else {
            "available": True, **resolve_backend(name).device_info()}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "fused_cpu_kernels": fused_kernels_status() or "on",
        "backends": devices,
    }


def describe_blas(info):
    """One line for the BLAS entries of a numpy backend's device_info(): 'openblas 0.3.31 SkylakeX, 2 threads'."""
    parts = []
    for pool in info.get("blas") or []:
        text = " ".join(str(pool[key]) for key in ("library", "version", "architecture") if pool.get(key))
        if pool.get("threads") is not None:
            text += f", {pool['threads']} threads"
        parts.append(text)
    return "; ".join(parts) or "BLAS unknown"


# ----- timing ------------------------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else math.nan


def timed(backend, function, *args, **kwargs):
    """Seconds that ``function(*args, **kwargs)`` takes, with the device synchronised before and
    after so queued GPU work is counted in full; returns (seconds, result)."""
    backend.synchronize()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    backend.synchronize()
    return time.perf_counter() - start, result


def gemm_rate(backend, dtype="float32", size=1024, repeats=5, min_seconds=0.05):
    """The float matrix-product rate of ``backend`` in FLOP/s: the median over ``repeats`` of
    back-to-back ``size`` x ``size`` products (2 size^3 FLOP each), after one untimed product.
    On the CPU it runs with the BLAS thread count in force."""
    xp = backend.xp
    generator = backend.device_generator(0)
    a = generator.standard_normal((size, size), dtype=dtype)
    b = generator.standard_normal((size, size), dtype=dtype)
    out = xp.empty((size, size), dtype=dtype)
    seconds, _ = timed(backend, xp.matmul, a, b, out=out)
    count = max(1, int(min_seconds / max(seconds, 1e-6)))

    def run():
        for _ in range(count):
            xp.matmul(a, b, out=out)

    times = [timed(backend, run)[0] / count for _ in range(repeats)]
    return 2.0 * size**3 / median(times)


def products_time(backend, products, dtype="float32", repeats=5, min_seconds=0.02):
    """Seconds that the matrix products ``products`` ((m, n, k): an (m, k) by (k, n) product,
    both operands row-major) take back to back: the median over ``repeats``."""
    xp = backend.xp
    generator = backend.device_generator(1)
    operands = [(generator.standard_normal((m, k), dtype=dtype), generator.standard_normal((k, n), dtype=dtype),
                 xp.empty((m, n), dtype=dtype)) for m, n, k in products]

    def run_once():
        for a, b, out in operands:
            xp.matmul(a, b, out=out)

    seconds, _ = timed(backend, run_once)
    count = max(1, int(min_seconds / max(seconds, 1e-6)))

    def run():
        for _ in range(count):
            run_once()

    return median([timed(backend, run)[0] / count for _ in range(repeats)])


def product_flops(products):
    """Floating-point operations of the matrix products ``products`` ((m, n, k) triples)."""
    return 2.0 * sum(m * n * k for m, n, k in products)


# ----- training ----------------------------------------------------------------------------------


def build_mlp(features, hidden, classes, optimizer="sgd", dtype="float32", backend=None, seed=0):
    """A ReLU MLP ``features -> hidden... -> classes`` with a softmax output, compiled with the
    sparse categorical cross-entropy (fused with the softmax) and ``optimizer``."""
    from . import layers
    from .model import Sequential

    stack = [layers.Dense(width, activation="relu") for width in hidden]
    stack.append(layers.Dense(classes, activation="softmax"))
    model = Sequential(stack, input_dim=features, seed=seed, backend=backend, dtype=dtype)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def classification_data(features, classes, samples, seed=0, dtype="float32", noise=0.0):
    """Host arrays (x, y) from ``xpann.datasets.make_classification``: Gaussian class clusters,
    a fraction ``noise`` of the labels redrawn at random. Half the features carry the classes, or
    all of them when half are too few to give each class its own cluster."""
    from .datasets import make_classification

    informative = features // 2 if 2 ** (features // 2) >= classes else features
    return make_classification(n_samples=samples, n_features=features, n_informative=informative,
                               n_classes=classes, seed=seed, dtype=dtype, noise=noise)


def time_training(model, x, y, batch_size, steps, repeats=5, warmup_steps=5, epochs=1):
    """Time ``model.fit`` for ``epochs`` epochs of ``steps`` batches of ``batch_size`` (shuffled).

    ``x`` and ``y`` must hold at least ``steps * batch_size`` samples; that many are uploaded to
    the model's device once, outside the timed region. A warm-up fit of ``warmup_steps`` batches
    first keeps one-time costs (CUDA context, kernel compilation, first allocations, BLAS thread
    start-up) out of the figures, and the device is synchronised around each timed fit.
    Returns a dict: every repeat's seconds, the median step seconds and samples/s, the BLAS
    thread count most timed steps ran on and the steps per count (the CPU backend's choice, which
    for large products follows the cores other processes leave free; None on a GPU) and the
    FLOP of one step's matrix products.
    """
    backend = model.backend
    samples = steps * batch_size
    x_device = backend.asarray(x[:samples], dtype=model.dtype)
    y_device = backend.asarray(y[:samples])
    if warmup_steps:
        warm = min(samples, warmup_steps * batch_size)
        model.fit(x_device[:warm], y_device[:warm], epochs=1, batch_size=batch_size, verbose=0)
    times, used = [], {}
    for _ in range(repeats):
        times.append(timed(backend, model.fit, x_device, y_device, epochs=epochs, batch_size=batch_size,
                           verbose=0)[0])
        plan = getattr(model, "_thread_plan", None)
        for count, steps_run in (plan.steps if plan is not None else {}).items():
            used[count] = used.get(count, 0) + steps_run
    products = model.plan.matmul_products(batch_size)
    threads = max(used, key=used.get) if used else None
    seconds = median(times)
    return {
        "batch_size": batch_size,
        "steps": steps * epochs,
        "repeats": repeats,
        "seconds": times,
        "step_seconds": seconds / (steps * epochs),
        "samples_per_second": samples * epochs / seconds,
        "blas_threads": threads,
        "blas_threads_steps": {str(count): steps_run for count, steps_run in sorted(used.items())},
        "step_flops": product_flops(products),
    }


def crossover(cpu_rates, gpu_rates):
    """The smallest batch size from which the GPU's samples/s beats the CPU's at every larger
    batch size measured, or None. Both arguments map batch size -> samples/s."""
    common = sorted(set(cpu_rates) & set(gpu_rates))
    found = None
    for batch in reversed(common):
        if gpu_rates[batch] > cpu_rates[batch]:
            found = batch
        else:
            break
    return found
