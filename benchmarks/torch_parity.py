"""xpann against PyTorch, side by side from the same inputs: every optimizer for 100 steps, every
activation's forward and backward, every loss's value and gradient, in float32 and float64.

Run by hand (torch is not a dependency of xpann):

    python benchmarks/torch_parity.py [--out benchmarks/results/torch_parity.md]

For each item it prints the largest absolute difference, the largest distance in units in the
last place (ULP) between matching entries, and the largest difference in ULPs of the item's
largest entry (the integer ULP distance explodes where a value sits near 0, as 1 - y^2 does in
tanh's backward at |y| ~ 1). Torch runs twice: with its usual vectorised CPU kernels (which fuse
multiply-adds), and, in a child process, with ATEN_CPU_CAPABILITY=default, whose scalar kernels
do plain IEEE arithmetic as NumPy does. Torch's float sqrt comes from MKL's vector library and
is not correctly rounded (1 ULP off in about one case in six); the last optimizer column runs
xpann with torch's sqrt in place of NumPy's, which isolates the order of operations.
"""

import argparse
import json
import os
import platform
import subprocess
import sys

import types

import numpy
import torch

import xpann
from xpann import activations, losses, optimizers

STEPS = 100
SHAPES = [(64, 32), (32,), (32, 10), (10,)]
BACKEND = xpann.backend.resolve_backend("numpy")

OPTIMIZERS = {
    # name: (xpann factory, torch factory); the same hyperparameters in each one's own names
    "SGD": (lambda: optimizers.SGD(learning_rate=0.05),
            lambda p: torch.optim.SGD(p, lr=0.05)),
    "SGD momentum": (lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "SGD Nesterov": (lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "SGD weight_decay": (lambda: optimizers.SGD(learning_rate=0.05, momentum=0.5, weight_decay=0.01),
                         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, weight_decay=0.01)),
    "Adagrad": (lambda: optimizers.Adagrad(learning_rate=0.05),
                lambda p: torch.optim.Adagrad(p, lr=0.05)),
    "Adagrad init+lr_decay": (
        lambda: optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.1, lr_decay=0.01),
        lambda p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, lr_decay=0.01)),
    "Adadelta": (lambda: optimizers.Adadelta(learning_rate=1.0),
                 lambda p: torch.optim.Adadelta(p, lr=1.0)),
    "RMSprop": (lambda: optimizers.RMSprop(learning_rate=0.01),
                lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "RMSprop momentum": (lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.9),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9)),
    "RMSprop centered": (lambda: optimizers.RMSprop(learning_rate=0.01, centered=True),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True)),
    "Adam": (lambda: optimizers.Adam(learning_rate=0.01),
             lambda p: torch.optim.Adam(p, lr=0.01)),
    "Adam amsgrad": (lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
                     lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True)),
    "Adam weight_decay": (lambda: optimizers.Adam(learning_rate=0.01, weight_decay=0.01),
                          lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
    "AdamW": (lambda: optimizers.AdamW(learning_rate=0.01),
              lambda p: torch.optim.AdamW(p, lr=0.01)),
    "Nadam": (lambda: optimizers.Nadam(learning_rate=0.01),
              lambda p: torch.optim.NAdam(p, lr=0.01)),
}

ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "elu": torch.nn.functional.elu,
    "selu": torch.nn.functional.selu,
    "gelu": torch.nn.functional.gelu,
    "swish": torch.nn.functional.silu,
    "softplus": torch.nn.functional.softplus,  # |z| stays below torch's threshold of 20
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


def torch_losses():
    F = torch.nn.functional
    return {
        "mse": (losses.MeanSquaredError(), "regression", F.mse_loss),
        "mae": (losses.MeanAbsoluteError(), "regression", F.l1_loss),
        "rmse": (losses.RootMeanSquaredError(), "regression", lambda p, y: torch.sqrt(F.mse_loss(p, y))),
        "huber": (losses.Huber(delta=1.0), "regression", lambda p, y: F.huber_loss(p, y, delta=1.0)),
        "binary_crossentropy": (losses.BinaryCrossentropy(), "binary", F.binary_cross_entropy),
        "binary_crossentropy logits": (losses.BinaryCrossentropy(from_logits=True), "binary_logits",
                                       F.binary_cross_entropy_with_logits),
        "categorical_crossentropy": (losses.CategoricalCrossentropy(), "categorical",
                                     lambda p, y: -(y * torch.log(p)).sum() / p.shape[0]),
        "categorical_crossentropy logits": (losses.CategoricalCrossentropy(from_logits=True),
                                            "categorical_logits", F.cross_entropy),
        "sparse_categorical_crossentropy": (losses.SparseCategoricalCrossentropy(), "sparse",
                                            lambda p, y: F.nll_loss(torch.log(p), y)),
        "sparse_categorical_crossentropy logits": (losses.SparseCategoricalCrossentropy(from_logits=True),
                                                   "sparse_logits", F.cross_entropy),
    }


# ----- comparison ----------------------------------------------------------------------------

def ulp_distance(a, b):
    """Largest number of representable floats between matching entries of a and b."""
    a, b = numpy.ascontiguousarray(a), numpy.ascontiguousarray(b)
    int_type = {4: numpy.int32, 8: numpy.int64}[a.dtype.itemsize]

    def ordered(x):
        i = x.view(int_type).astype(object if a.dtype.itemsize == 8 else numpy.int64)
        minimum = -(2 ** (8 * a.dtype.itemsize - 1))
        return numpy.where(i < 0, minimum - i, i)

    return int(numpy.max(numpy.abs(ordered(a) - ordered(b)))) if a.size else 0


def scaled_ulps(a, b):
    """max |a - b| in ULPs of the largest |b| (the spacing of floats at the item's scale)."""
    scale = numpy.max(numpy.abs(b)) if b.size else 0
    return float(numpy.max(numpy.abs(a.astype(numpy.float64) - b)) / numpy.spacing(b.dtype.type(scale))) \
        if scale else 0.0


def compare(mine, theirs):
    mine = [numpy.asarray(m) for m in mine]
    theirs = [numpy.asarray(t) for t in theirs]
    for m, t in zip(mine, theirs):
        assert m.dtype == t.dtype and m.shape == t.shape, (m.dtype, t.dtype, m.shape, t.shape)
    return {
        "abs": max(float(numpy.max(numpy.abs(m.astype(numpy.float64) - t.astype(numpy.float64))))
                   for m, t in zip(mine, theirs)),
        "ulp": max(ulp_distance(m, t) for m, t in zip(mine, theirs)),
        "scaled": max(scaled_ulps(m, t) for m, t in zip(mine, theirs)),
    }


class _TorchSqrtNumpy(types.ModuleType):
    """NumPy, except that sqrt is torch's (diagnostic only: isolates the order of operations)."""

    def __getattr__(self, name):
        return getattr(numpy, name)

    @staticmethod
    def sqrt(x, out=None):
        result = torch.from_numpy(numpy.ascontiguousarray(x)).sqrt().numpy()
        if out is None:
            return result
        out[...] = result
        return out


def torch_sqrt_backend():
    backend = xpann.backend.resolve_backend("numpy")
    clone = type(backend)()
    clone.xp = _TorchSqrtNumpy("numpy_with_torch_sqrt")
    return clone


# ----- the three kinds of item ---------------------------------------------------------------

def optimizer_row(name, dtype, seed=0, backend=BACKEND):
    make_xpann, make_torch = OPTIMIZERS[name]
    rng = numpy.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    grads = [[(rng.uniform(0.1, 2.0) * rng.standard_normal(shape)).astype(dtype) for shape in SHAPES]
             for _ in range(STEPS)]

    flat = numpy.concatenate([p.ravel() for p in params])
    segments, start = [], 0
    for p in params:
        segments.append(slice(start, start + p.size))
        start += p.size
    opt = make_xpann()
    opt.build(backend, flat)
    for step in grads:
        opt.apply(flat, numpy.concatenate([g.ravel() for g in step]), segments)
    mine = [flat[part].reshape(p.shape) for part, p in zip(segments, params)]

    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    reference = make_torch(tensors)
    for group in reference.param_groups:
        group["foreach"] = False  # the per-tensor path torch takes on the CPU
    for step in grads:
        for tensor, g in zip(tensors, step):
            tensor.grad = torch.tensor(g)
        reference.step()
    theirs = [t.detach().numpy() for t in tensors]
    return compare(mine, theirs)


def activation_row(name, dtype, seed=1):
    rng = numpy.random.default_rng(seed)
    z = numpy.clip(rng.normal(0.0, 3.0, (256, 10)), -15, 15).astype(dtype)
    w = rng.standard_normal((256, 10)).astype(dtype)
    act = activations.get(name)
    y = act.forward(BACKEND, z)
    dz = act.backward(BACKEND, w, z, y)

    zt = torch.tensor(z, requires_grad=True)
    yt = ACTIVATIONS[name](zt)
    (yt * torch.tensor(w)).sum().backward()
    return compare([y], [yt.detach().numpy()]), compare([dz], [zt.grad.numpy()])


def loss_inputs(kind, dtype, rng, n=256, k=5):
    if kind == "regression":
        y = rng.standard_normal((n, 3))
        return y.astype(dtype), (y + rng.normal(0.0, 1.5, (n, 3))).astype(dtype)
    if kind in ("binary", "binary_logits"):
        y = rng.integers(0, 2, (n, 3)).astype(dtype)
        pred = rng.uniform(0.02, 0.98, (n, 3)) if kind == "binary" else rng.normal(0.0, 3.0, (n, 3))
        return y, pred.astype(dtype)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0.0, 3.0, (n, k))
    pred = logits if kind.endswith("logits") else numpy.exp(logits) / numpy.exp(logits).sum(1, keepdims=True)
    pred = numpy.clip(pred, 1e-6, 1.0).astype(dtype)  # away from the 1e-7 clip, which torch lacks
    y = labels if kind.startswith("sparse") else numpy.eye(k, dtype=dtype)[labels]
    return y, pred


def loss_row(name, dtype, seed=2):
    loss, kind, torch_loss = torch_losses()[name]
    y, pred = loss_inputs(kind, dtype, numpy.random.default_rng(seed))
    value, grad = loss.value_and_grad(BACKEND, y, pred)

    pt = torch.tensor(pred, requires_grad=True)
    vt = torch_loss(pt, torch.tensor(y))
    vt.backward()
    return compare([numpy.asarray(value)], [vt.detach().numpy()]), compare([grad], [pt.grad.numpy()])


def all_rows(with_torch_sqrt=False):
    torch.manual_seed(0)
    rows = []
    sqrt_backend = torch_sqrt_backend() if with_torch_sqrt else None
    for dtype in ("float32", "float64"):
        # torch keeps NAdam's mu_product and its step counters in the default dtype
        torch.set_default_dtype(getattr(torch, dtype))
        for name in OPTIMIZERS:
            row = {"kind": "optimizer", "item": f"{name}: params after {STEPS} steps", "dtype": dtype,
                   **optimizer_row(name, dtype)}
            if sqrt_backend is not None:
                row["torch_sqrt"] = optimizer_row(name, dtype, backend=sqrt_backend)
            rows.append(row)
        for name in ACTIVATIONS:
            forward, backward = activation_row(name, dtype)
            rows.append({"kind": "activation", "item": f"{name} forward", "dtype": dtype, **forward})
            rows.append({"kind": "activation", "item": f"{name} backward", "dtype": dtype, **backward})
        for name in torch_losses():
            value, grad = loss_row(name, dtype)
            rows.append({"kind": "loss", "item": f"{name} value", "dtype": dtype, **value})
            rows.append({"kind": "loss", "item": f"{name} gradient", "dtype": dtype, **grad})
    torch.set_default_dtype(torch.float32)
    return rows


# ----- report --------------------------------------------------------------------------------

def machine():
    from xpann.benchmarking import cpu_model

    cpu = cpu_model()
    return {"cpu": cpu, "cores": os.cpu_count(), "numpy": numpy.__version__, "torch": torch.__version__,
            "xpann": xpann.__version__, "python": platform.python_version(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _scaled(value):
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def table(kind, rows, scalar_rows):
    """One markdown table per kind; each dtype gets: max abs, max ULP, ULP at scale, then the
    ULP distance (and ULP at scale) against scalar-kernel torch, and for optimizers the same
    with torch's sqrt."""
    rows = [r for r in rows if r["kind"] == kind]
    scalar = {(r["item"], r["dtype"]): r for r in scalar_rows or []}
    by_key = {(r["item"], r["dtype"]): r for r in rows}
    head = ["item"]
    for short in ("f32", "f64"):
        head += [f"{short} max abs", f"{short} max ULP", f"{short} ULP at scale", f"{short} vs scalar torch"]
        if kind == "optimizer":
            head.append(f"{short} vs scalar torch, its sqrt")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for item in dict.fromkeys(r["item"] for r in rows):
        cells = [item]
        for dtype in ("float32", "float64"):
            r = by_key[(item, dtype)]
            cells += [f"{r['abs']:.2e}", str(r["ulp"]), _scaled(r["scaled"])]
            s = scalar.get((item, dtype))
            cells.append(f"{s['ulp']} ({_scaled(s['scaled'])})" if s else "-")
            if kind == "optimizer":
                t = s.get("torch_sqrt") if s else None
                cells.append(f"{t['ulp']} ({_scaled(t['scaled'])})" if t else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the report (markdown) to this file")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (used for the child run)")
    args = parser.parse_args()
    rows = all_rows(with_torch_sqrt=args.json)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}))
        return
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    child = subprocess.run([sys.executable, __file__, "--json"], capture_output=True, text=True, env=env)
    scalar = json.loads(child.stdout) if child.returncode == 0 else None
    if scalar is None:
        print("the ATEN_CPU_CAPABILITY=default run failed:\n" + child.stderr, file=sys.stderr)
    info = machine()
    lines = [
        "# xpann vs torch: optimizers, activations and losses",
        "",
        f"Machine: {info['cpu']} ({info['cores']} cores), Python {info['python']}, numpy {info['numpy']}, "
        f"torch {info['torch']} (CPU kernels: {info['torch_cpu_capability']}), xpann {info['xpann']}.",
        "",
        f"Same inputs on both sides; optimizers: {STEPS} steps on four tensors ({', '.join(map(str, SHAPES))}) "
        "with random gradients, torch's per-tensor (foreach=False) path, torch's default dtype set to the "
        "run's dtype. \"max ULP\" is against torch's usual vectorised kernels "
        f"({info['torch_cpu_capability']}), \"vs scalar torch\" against the same torch run with "
        "ATEN_CPU_CAPABILITY=default (plain IEEE arithmetic, no fused multiply-add), given as "
        "\"max ULP (ULP at scale)\"; \"its sqrt\" runs xpann with torch's sqrt (MKL, not correctly rounded) "
        "in place of NumPy's. \"ULP at scale\" is max |diff| in ULPs of the item's largest entry.",
        "",
    ]
    for kind, title in (("optimizer", "Optimizers"), ("activation", "Activations (forward, and backward of "
                                                                     "sum(w * f(z)))"),
                        ("loss", "Losses (value, and gradient with respect to the prediction)")):
        lines += [f"## {title}", "", table(kind, rows, scalar["rows"] if scalar else None), ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)


if __name__ == "__main__":
    main()
