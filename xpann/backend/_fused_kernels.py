"""The numba kernels of ``_fused`` (this module imports numba: load it only through ``_fused``):
the optimizers' updates and the ReLU layer's element-wise passes.

Module-level functions, so that numba can cache their machine code on disk. No fast-math: every
operation is the IEEE one NumPy's array code makes, in its order.
"""

import numpy
from numba import njit

jit = njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@jit
def maximum(a, b):
    # numpy.maximum: NaN if either is NaN
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@jit
def sgd(p, g, b, lr, wd, decay, mu, momentum, nesterov):
    for i in range(p.shape[0]):
        gi = g[i]
        if decay:
            gi = gi + wd * p[i]
        if momentum:
            bi = b[i] * mu
            bi = bi + gi
            b[i] = bi
            if nesterov:
                gi = gi + mu * bi
            else:
                gi = bi
        p[i] = p[i] - gi * lr


@jit
def adagrad(p, g, s, clr, eps, wd, decay):
    for i in range(p.shape[0]):
        gi = g[i]
        if decay:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        t = numpy.sqrt(si)
        t = t + eps
        p[i] = p[i] - (gi * clr) / t


@jit
def adadelta(p, g, v, u, lr, rho, one_minus_rho, eps, wd, decay):
    for i in range(p.shape[0]):
        gi = g[i]
        if decay:
            gi = gi + wd * p[i]
        vi = v[i] * rho
        vi = vi + (gi * one_minus_rho) * gi
        v[i] = vi
        std = numpy.sqrt(vi + eps)
        delta = numpy.sqrt(u[i] + eps)
        delta = delta / std
        delta = delta * gi
        ui = u[i] * rho
        ui = ui + (delta * one_minus_rho) * delta
        u[i] = ui
        p[i] = p[i] - delta * lr


@jit
def rmsprop(p, g, v, gbar, b, lr, rho, one_minus_rho, eps, wd, decay, centered, mu, momentum):
    for i in range(p.shape[0]):
        gi = g[i]
        if decay:
            gi = gi + wd * p[i]
        vi = v[i] * rho
        vi = vi + (gi * one_minus_rho) * gi
        v[i] = vi
        if centered:
            ai = gbar[i]
            ai = ai + (gi - ai) * one_minus_rho
            gbar[i] = ai
            t = numpy.sqrt(vi - ai * ai)
        else:
            t = numpy.sqrt(vi)
        t = t + eps
        if momentum:
            bi = b[i] * mu
            bi = bi + gi / t
            b[i] = bi
            p[i] = p[i] - bi * lr
        else:
            p[i] = p[i] - (gi * lr) / t


@jit
def adam(p, g, m, v, vmax, step_size, b1c, b2, b2c, bias2, eps, wd, decay, shrink, decoupled, amsgrad):
    for i in range(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if decay:
            gi = gi + wd * pi
        if decoupled:
            pi = pi * shrink
        mi = m[i]
        mi = mi + (gi - mi) * b1c
        m[i] = mi
        vi = v[i] * b2
        vi = vi + (gi * b2c) * gi
        v[i] = vi
        if amsgrad:
            vi = maximum(vmax[i], vi)
            vmax[i] = vi
        t = numpy.sqrt(vi)
        t = t / bias2
        t = t + eps
        p[i] = pi - (mi * step_size) / t


@jit
def nadam(p, g, m, v, b1c, b2, b2c, bias2, eps, c1, c2, wd, decay):
    for i in range(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if decay:
            gi = gi + wd * pi
        mi = m[i]
        mi = mi + (gi - mi) * b1c
        m[i] = mi
        vi = v[i] * b2
        vi = vi + (gi * b2c) * gi
        v[i] = vi
        d = vi / bias2
        d = numpy.sqrt(d)
        d = d + eps
        pi = pi - (gi * c1) / d
        p[i] = pi - (mi * c2) / d


@jit
def bias_relu(z, bias, y):
    """z += bias (row by row); y = maximum(z, 0) as numpy.maximum(z, zeros) gives it (NaN kept,
    -0 -> +0). ``y`` may have more columns than ``z`` (its first columns are written)."""
    rows, columns = z.shape
    for i in range(rows):
        for j in range(columns):
            v = z[i, j] + bias[j]
            z[i, j] = v
            y[i, j] = v if (v > 0 or v != v) else 0


@jit
def relu(z, y):
    """y = maximum(z, 0), as ``bias_relu`` without the bias."""
    rows, columns = z.shape
    for i in range(rows):
        for j in range(columns):
            v = z[i, j]
            y[i, j] = v if (v > 0 or v != v) else 0


@jit
def relu_backward(dy, y, dz):
    """dz = dy * (y > 0), the mask as 1 or 0 in dy's dtype, as NumPy multiplies by a bool array.
    ``y`` may have more columns than ``dy`` (its first columns are read)."""
    rows, columns = dy.shape
    one = dy.dtype.type(1)
    zero = dy.dtype.type(0)
    for i in range(rows):
        for j in range(columns):
            dz[i, j] = dy[i, j] * (one if y[i, j] > 0 else zero)


KERNELS = {"sgd": sgd, "adagrad": adagrad, "adadelta": adadelta, "rmsprop": rmsprop, "adam": adam, "nadam": nadam, "bias_relu": bias_relu, "relu": relu, "relu_backward": relu_backward}
