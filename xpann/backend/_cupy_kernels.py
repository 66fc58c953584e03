"""CuPy kernels for the training step: each optimizer's whole update, a ReLU Dense layer's bias +
ReLU and ReLU backward, and the sparse softmax cross-entropy from logits, each in one launch
instead of one launch per array operation (a small model's step is bound by launches).

The optimizer and ReLU kernels make, element by element, the IEEE operations of the generic array
code (``xpann/optimizers.py``, ``xpann/layers.py``) in its order and in the parameters' dtype,
compiled with no contraction into fused multiply-adds (``--fmad=false``): their results are bitwise
those of the generic CuPy path, which stays the reference. The cross-entropy kernel sums each row
in its own order, so it agrees with the generic path to rounding.

Loaded by the CuPy backend only (this module imports CuPy); CuPy compiles each kernel at its first
call for a dtype and caches it on disk. The call signatures are those of the CPU kernels in
``_fused_kernels``.
"""

import cupy

OPTIONS = ("--fmad=false",)
_KERNELS = {}


def _elementwise(name, inputs, outputs, lines):
    key = (name, inputs, outputs, tuple(lines))
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = cupy.ElementwiseKernel(
            inputs, outputs, "\n".join(lines), "xpann_" + name, options=OPTIONS, no_return=True)
    return kernel


def _weight_decay(decay):
    """g + wd * p, as ``grads += weight_decay * params`` in the optimizer's apply()."""
    return ["T gi = g;"] + (["gi = gi + wd * p;"] if decay else [])


# ----- optimizers: p, g and the slots are flat arrays of one dtype, scalars already of it --------


def sgd(p, g, b, lr, wd, decay, mu, momentum, nesterov):
    lines = _weight_decay(decay)
    if momentum:
        lines += ["T bi = b * mu;", "bi = bi + gi;", "b = bi;", "gi = gi + mu * bi;" if nesterov else "gi = bi;"]
    lines.append("p = p - gi * lr;")
    kernel = _elementwise("sgd", "T g, T lr, T wd, T mu", "T p, T b" if momentum else "T p", lines)
    kernel(g, lr, wd, mu, p, b) if momentum else kernel(g, lr, wd, mu, p)


def adagrad(p, g, s, clr, eps, wd, decay):
    lines = _weight_decay(decay) + [
        "T si = s + gi * gi;", "s = si;", "T t = sqrt(si);", "t = t + eps;", "p = p - (gi * clr) / t;"]
    _elementwise("adagrad", "T g, T clr, T eps, T wd", "T p, T s", lines)(g, clr, eps, wd, p, s)


def adadelta(p, g, v, u, lr, rho, one_minus_rho, eps, wd, decay):
    lines = _weight_decay(decay) + [
        "T vi = v * rho;", "vi = vi + (gi * one_minus_rho) * gi;", "v = vi;",
        "T std_ = sqrt(vi + eps);", "T delta = sqrt(u + eps);", "delta = delta / std_;", "delta = delta * gi;",
        "T ui = u * rho;", "ui = ui + (delta * one_minus_rho) * delta;", "u = ui;", "p = p - delta * lr;"]
    kernel = _elementwise("adadelta", "T g, T lr, T rho, T one_minus_rho, T eps, T wd", "T p, T v, T u", lines)
    kernel(g, lr, rho, one_minus_rho, eps, wd, p, v, u)


def rmsprop(p, g, v, gbar, b, lr, rho, one_minus_rho, eps, wd, decay, centered, mu, momentum):
    lines = _weight_decay(decay) + ["T vi = v * rho;", "vi = vi + (gi * one_minus_rho) * gi;", "v = vi;"]
    if centered:
        lines += ["T ai = gbar;", "ai = ai + (gi - ai) * one_minus_rho;", "gbar = ai;", "T t = sqrt(vi - ai * ai);"]
    else:
        lines.append("T t = sqrt(vi);")
    lines.append("t = t + eps;")
    if momentum:
        lines += ["T bi = b * mu;", "bi = bi + gi / t;", "b = bi;", "p = p - bi * lr;"]
    else:
        lines.append("p = p - (gi * lr) / t;")
    outputs = ["T p", "T v"] + (["T gbar"] if centered else []) + (["T b"] if momentum else [])
    arrays = [p, v] + ([gbar] if centered else []) + ([b] if momentum else [])
    kernel = _elementwise("rmsprop", "T g, T lr, T rho, T one_minus_rho, T eps, T wd, T mu", ", ".join(outputs), lines)
    kernel(g, lr, rho, one_minus_rho, eps, wd, mu, *arrays)


def adam(p, g, m, v, vmax, step_size, b1c, b2, b2c, bias2, eps, wd, decay, shrink, decoupled, amsgrad):
    lines = ["T pi = p;", "T gi = g;"] + (["gi = gi + wd * pi;"] if decay else [])
    if decoupled:
        lines.append("pi = pi * shrink;")
    lines += ["T mi = m;", "mi = mi + (gi - mi) * b1c;", "m = mi;",
              "T vi = v * b2;", "vi = vi + (gi * b2c) * gi;", "v = vi;"]
    if amsgrad:  # numpy.maximum: NaN if either is NaN
        lines += ["T wi = vmax;", "vi = (wi != wi) ? wi : ((vi != vi) ? vi : ((wi >= vi) ? wi : vi));", "vmax = vi;"]
    lines += ["T t = sqrt(vi);", "t = t / bias2;", "t = t + eps;", "p = pi - (mi * step_size) / t;"]
    outputs = "T p, T m, T v" + (", T vmax" if amsgrad else "")
    kernel = _elementwise("adam", "T g, T step_size, T b1c, T b2, T b2c, T bias2, T eps, T wd, T shrink", outputs,
                          lines)
    arrays = (p, m, v, vmax) if amsgrad else (p, m, v)
    kernel(g, step_size, b1c, b2, b2c, bias2, eps, wd, shrink, *arrays)


def nadam(p, g, m, v, b1c, b2, b2c, bias2, eps, c1, c2, wd, decay):
    lines = ["T pi = p;", "T gi = g;"] + (["gi = gi + wd * pi;"] if decay else []) + [
        "T mi = m;", "mi = mi + (gi - mi) * b1c;", "m = mi;",
        "T vi = v * b2;", "vi = vi + (gi * b2c) * gi;", "v = vi;",
        "T d = vi / bias2;", "d = sqrt(d);", "d = d + eps;", "pi = pi - (gi * c1) / d;", "p = pi - (mi * c2) / d;"]
    kernel = _elementwise("nadam", "T g, T b1c, T b2, T b2c, T bias2, T eps, T c1, T c2, T wd", "T p, T m, T v",
                          lines)
    kernel(g, b1c, b2, b2c, bias2, eps, c1, c2, wd, p, m, v)


# ----- a ReLU Dense layer's element-wise passes ---------------------------------------------------


def _columns(wide, like):
    """The first columns of ``wide`` (a buffer that may carry an extra column of ones) shaped as ``like``."""
    return wide if wide.shape[1] == like.shape[1] else wide[:, :like.shape[1]]


_RELU = "(v > (T)0 || v != v) ? v : (T)0"  # numpy.maximum(v, 0): NaN kept


def bias_relu(z, bias, y):
    """z += bias (row by row); y = maximum(z, 0)."""
    _elementwise("bias_relu", "T bias", "T z, T y", ["T v = z + bias;", "z = v;", f"y = {_RELU};"])(
        bias, z, _columns(y, z))


def relu(z, y):
    """y = maximum(z, 0)."""
    _elementwise("relu", "T z", "T y", ["T v = z;", f"y = {_RELU};"])(z, _columns(y, z))


def relu_backward(dy, y, dz):
    """dz = dy * (y > 0), the mask as 1 or 0 in dy's dtype."""
    _elementwise("relu_backward", "T dy, T y", "T dz", ["dz = dy * ((y > (T)0) ? (T)1 : (T)0);"])(
        dy, _columns(y, dy), dz)


# ----- the sparse softmax cross-entropy from logits -----------------------------------------------

_SOFTMAX_CE_SOURCE = r"""
extern "C" __global__ void xpann_sparse_softmax_ce(const REAL* z, const long long* labels, REAL* grad,
                                                     REAL* per_sample, const int n, const int k) {
    const int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    const REAL* zr = z + (long long)row * k;
    REAL* gr = grad + (long long)row * k;
    REAL top = zr[0];
    for (int j = 1; j < k; ++j) {
        const REAL value = zr[j];
        top = (top != top) ? top : ((value != value || value > top) ? value : top);
    }
    REAL total = 0;
    for (int j = 0; j < k; ++j) {
        const REAL e = exp(zr[j] - top);
        gr[j] = e;
        total += e;
    }
    const long long label = labels[row];
    per_sample[row] = log(total) - (zr[label] - top);
    const REAL scale = total * (REAL)n;
    for (int j = 0; j < k; ++j) gr[j] = gr[j] / scale;
    gr[label] -= (REAL)1 / (REAL)n;
}
"""
_SOFTMAX_CE = {}
THREADS = 128


def sparse_softmax_crossentropy(logits, labels, grad, per_sample):
    """Per row i of the (n, k) C-contiguous logits z with label l_i: shifted = z - max(z);
    s = sum exp(shifted); per_sample[i] = log s - shifted[l_i]; grad = exp(shifted) / (n s), less
    1/n at l_i. Returns False (nothing done) for inputs the kernel does not take."""
    dtype = logits.dtype
    if (dtype not in (cupy.float32, cupy.float64) or logits.ndim != 2 or not logits.flags.c_contiguous
            or labels.dtype != cupy.int64 or not labels.flags.c_contiguous or not grad.flags.c_contiguous
            or grad.dtype != dtype or per_sample.dtype != dtype):
        return False
    kernel = _SOFTMAX_CE.get(dtype)
    if kernel is None:
        real = "float" if dtype == cupy.float32 else "double"
        kernel = _SOFTMAX_CE[dtype] = cupy.RawKernel(_SOFTMAX_CE_SOURCE.replace("REAL", real),
                                                     "xpann_sparse_softmax_ce", options=OPTIONS)
    n, k = logits.shape
    kernel(((n + THREADS - 1) // THREADS,), (THREADS,),
           (logits, labels, grad, per_sample, cupy.int32(n), cupy.int32(k)))
    return True


OPTIMIZERS = {"sgd": sgd, "adagrad": adagrad, "adadelta": adadelta, "rmsprop": rmsprop, "adam": adam,
              "nadam": nadam}
LAYER_KERNELS = {"bias_relu": bias_relu, "relu": relu, "relu_backward": relu_backward,
                 "sparse_softmax_crossentropy": sparse_softmax_crossentropy}
