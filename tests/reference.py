"""Float64 NumPy references, written straight from the formulas and kept apart from xpann's code.

The optimizers follow the pseudo-code that torch.optim publishes for each algorithm (SGD,
Adagrad, Adadelta, RMSprop, Adam, AdamW, NAdam), tensor by tensor, with Keras's gradient
clipping in front. They are deliberately plain: no in-place tricks, no shared scratch.
"""

import math

import numpy

# ----- activations ---------------------------------------------------------------------------

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = numpy.vectorize(math.erf, otypes=[numpy.float64])


def sigmoid(z):
    # exp(-logaddexp(0, -z)) = 1 / (1 + exp(-z)) without overflow
    return numpy.exp(-numpy.logaddexp(0.0, -z))


def softplus(z):
    return numpy.logaddexp(0.0, z)


def softmax(z):
    e = numpy.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=-1, keepdims=True))


def elu(z, alpha=1.0):
    return numpy.where(z > 0, z, alpha * numpy.expm1(numpy.minimum(z, 0.0)))


ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": sigmoid,
    "tanh": numpy.tanh,
    "relu": lambda z: numpy.maximum(z, 0.0),
    "leaky_relu": lambda z: numpy.where(z > 0, z, 0.01 * z),
    "elu": elu,
    "selu": lambda z: SELU_SCALE * elu(z, SELU_ALPHA),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
    "swish": lambda z: z * sigmoid(z),
    "softplus": softplus,
    "softmax": softmax,
}

# ----- losses --------------------------------------------------------------------------------

EPSILON = 1e-7


def mse(y, p):
    return numpy.mean((p - y) ** 2)


def mae(y, p):
    return numpy.mean(numpy.abs(p - y))


def rmse(y, p):
    return math.sqrt(mse(y, p))


def huber(y, p, delta=1.0):
    r = numpy.abs(p - y)
    return numpy.mean(numpy.where(r <= delta, 0.5 * r**2, delta * r - 0.5 * delta**2))


def binary_crossentropy(y, p):
    p = numpy.clip(p, EPSILON, 1 - EPSILON)
    return -numpy.mean(y * numpy.log(p) + (1 - y) * numpy.log(1 - p))


def binary_crossentropy_logits(y, z):
    # -y log sigmoid(z) - (1 - y) log sigmoid(-z), with log sigmoid(z) = -softplus(-z)
    return numpy.mean(y * softplus(-z) + (1 - y) * softplus(z))


def categorical_crossentropy(y, p):
    return -numpy.sum(y * numpy.log(numpy.clip(p, EPSILON, 1 - EPSILON))) / p.shape[0]


def categorical_crossentropy_logits(y, z):
    return -numpy.sum(y * log_softmax(z)) / z.shape[0]


def sparse_categorical_crossentropy(labels, p):
    picked = p[numpy.arange(p.shape[0]), labels]
    return -numpy.mean(numpy.log(numpy.clip(picked, EPSILON, 1 - EPSILON)))


def sparse_categorical_crossentropy_logits(labels, z):
    return -numpy.mean(log_softmax(z)[numpy.arange(z.shape[0]), labels])


def smoothed(y, ls, classes):
    """Keras' label smoothing of dense targets: y (1 - ls) + ls / classes (2 for binary)."""
    return y * (1 - ls) + ls / classes


def sparse_categorical_crossentropy_smoothed(labels, p, ls):
    """torch.nn.CrossEntropyLoss(label_smoothing=ls) on probabilities (clipped as the unsmoothed one):
    mean_i of -(1 - ls) log p[i, label_i] - (ls / K) sum_k log p[i, k]."""
    log_p = numpy.log(numpy.clip(p, EPSILON, 1 - EPSILON))
    picked = log_p[numpy.arange(p.shape[0]), labels]
    return numpy.mean(-(1 - ls) * picked - ls / p.shape[1] * log_p.sum(axis=1))


def sparse_categorical_crossentropy_smoothed_logits(labels, z, ls):
    log_p = log_softmax(z)
    picked = log_p[numpy.arange(z.shape[0]), labels]
    return numpy.mean(-(1 - ls) * picked - ls / z.shape[1] * log_p.sum(axis=1))


def per_sample_losses(name, y, p):
    """Each sample's loss (the mean over its outputs for mse, mae, huber, binary cross-entropy)."""
    rows = p.shape[0]
    if name == "sparse_categorical_crossentropy":
        return -numpy.log(numpy.clip(p[numpy.arange(rows), y], EPSILON, 1 - EPSILON))
    if name == "categorical_crossentropy":
        return -numpy.sum(y * numpy.log(numpy.clip(p, EPSILON, 1 - EPSILON)), axis=1)
    y, p = y.reshape(rows, -1), p.reshape(rows, -1)
    r = p - y
    if name == "mse":
        values = r**2
    elif name == "mae":
        values = numpy.abs(r)
    elif name == "huber":
        a = numpy.abs(r)
        values = numpy.where(a <= 1.0, 0.5 * r**2, a - 0.5)
    else:  # binary_crossentropy
        q = numpy.clip(p, EPSILON, 1 - EPSILON)
        values = -(y * numpy.log(q) + (1 - y) * numpy.log(1 - q))
    return values.mean(axis=1)


def weighted_loss(name, y, p, w):
    """Keras' reduction: sum(w_i * loss_i) / batch size."""
    return float(numpy.sum(w * per_sample_losses(name, y, p)) / p.shape[0])


# ----- normalization and embedding layers (torch.nn.BatchNorm1d, LayerNorm, Embedding) -------


def batch_norm_train(x, gamma, beta, moving_mean, moving_var, momentum=0.1, eps=1e-5):
    """(y, new moving mean, new moving variance): batch mean and biased variance normalise; the
    moving statistics take the unbiased variance."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    y = (x - mean) / numpy.sqrt(var + eps) * gamma + beta
    unbiased = var * n / (n - 1)
    return y, (1 - momentum) * moving_mean + momentum * mean, (1 - momentum) * moving_var + momentum * unbiased


def batch_norm_inference(x, gamma, beta, moving_mean, moving_var, eps=1e-5):
    return (x - moving_mean) / numpy.sqrt(moving_var + eps) * gamma + beta


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / numpy.sqrt(var + eps) * gamma + beta


def category_embedding(x, columns, tables):
    """The numeric columns in order, then each coded column's table row."""
    numeric = [c for c in range(x.shape[1]) if c not in columns]
    parts = [x[:, numeric]] + [table[x[:, c].astype(int)] for c, table in zip(columns, tables)]
    return numpy.concatenate(parts, axis=1)


# ----- initializers --------------------------------------------------------------------------

def initializer_spread(name, fan_in, fan_out):
    """("normal", std) or ("uniform", limit) per the formulas of API.md."""
    return {
        "uniform": ("uniform", 1 / math.sqrt(fan_in)),
        "glorot_uniform": ("uniform", math.sqrt(6 / (fan_in + fan_out))),
        "glorot_normal": ("normal", math.sqrt(2 / (fan_in + fan_out))),
        "he_uniform": ("uniform", math.sqrt(6 / fan_in)),
        "he_normal": ("normal", math.sqrt(2 / fan_in)),
        "lecun_uniform": ("uniform", math.sqrt(3 / fan_in)),
        "lecun_normal": ("normal", math.sqrt(1 / fan_in)),
    }[name]


# ----- schedules -----------------------------------------------------------------------------

def exponential_decay(step, initial, decay_steps, rate, staircase=False):
    exponent = step // decay_steps if staircase else step / decay_steps
    return initial * rate**exponent


def step_decay(step, initial, step_size, gamma):
    return initial * gamma ** (step // step_size)


def cosine_decay(step, initial, decay_steps, alpha=0.0):
    step = min(step, decay_steps)
    return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * step / decay_steps)) + alpha)


# ----- metrics -------------------------------------------------------------------------------

def r2_uniform_average(y, p):
    """R^2 per output column, averaged (scikit-learn's and Keras's default)."""
    y, p = y.reshape(len(y), -1), p.reshape(len(p), -1)
    ss_res = ((y - p) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(numpy.mean(1 - ss_res / ss_tot))


# ----- gradient clipping (Keras semantics) ---------------------------------------------------

def clip_gradients(grads, clipnorm=None, global_clipnorm=None, clipvalue=None):
    """Per tensor g c / max(||g||, c), or all tensors by their joint norm, or each entry to [-c, c]."""
    if clipvalue is not None:
        return [numpy.clip(g, -clipvalue, clipvalue) for g in grads]
    if global_clipnorm is not None:
        norm = math.sqrt(sum(float(numpy.sum(g * g)) for g in grads))
        return [g * global_clipnorm / max(norm, global_clipnorm) for g in grads]
    if clipnorm is not None:
        return [g * clipnorm / max(float(numpy.linalg.norm(g)), clipnorm) for g in grads]
    return list(grads)


# ----- optimizers (torch.optim's published algorithms) ---------------------------------------

class ReferenceOptimizer:
    """Runs one torch.optim algorithm on a list of float64 tensors.

    ``hyper`` uses xpann's (Keras) names; ``lr`` may be a float or a function of the step
    counted from 0, as xpann's schedules are.
    """

    def __init__(self, name, params, lr, clipnorm=None, global_clipnorm=None, clipvalue=None, **hyper):
        self.name = name
        self.params = [numpy.array(p, dtype=numpy.float64) for p in params]
        self.lr = lr
        self.clip = {"clipnorm": clipnorm, "global_clipnorm": global_clipnorm, "clipvalue": clipvalue}
        self.hyper = hyper
        self.t = 0
        self.state = [{} for _ in self.params]
        self.mu_product = 1.0

    def step(self, grads):
        lr = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        grads = clip_gradients([numpy.asarray(g, dtype=numpy.float64) for g in grads], **self.clip)
        if self.name == "nadam":  # one mu schedule shared by all tensors
            psi = self.hyper.get("momentum_decay", 0.004)
            b1 = self.hyper.get("beta_1", 0.9)
            self.mu_t = b1 * (1 - 0.5 * 0.96 ** (self.t * psi))
            self.mu_next = b1 * (1 - 0.5 * 0.96 ** ((self.t + 1) * psi))
            self.mu_product *= self.mu_t
        for i, g in enumerate(grads):
            self.params[i] = getattr(self, "_" + self.name)(self.params[i], g, self.state[i], lr, self.t)
        return self.params

    def _sgd(self, theta, g, s, lr, t):
        mu = self.hyper.get("momentum", 0.0)
        wd = self.hyper.get("weight_decay", 0.0)
        nesterov = self.hyper.get("nesterov", False)
        if wd != 0:
            g = g + wd * theta
        if mu != 0:
            if t > 1:
                s["b"] = mu * s["b"] + g  # dampening 0
            else:
                s["b"] = g
            g = g + mu * s["b"] if nesterov else s["b"]
        return theta - lr * g

    def _adagrad(self, theta, g, s, lr, t):
        wd = self.hyper.get("weight_decay", 0.0)
        eta = self.hyper.get("lr_decay", 0.0)
        eps = self.hyper.get("epsilon", 1e-10)
        if t == 1:
            s["sum"] = numpy.full_like(theta, self.hyper.get("initial_accumulator_value", 0.0))
        clr = lr / (1 + (t - 1) * eta)
        if wd != 0:
            g = g + wd * theta
        s["sum"] = s["sum"] + g**2
        return theta - clr * g / (numpy.sqrt(s["sum"]) + eps)

    def _adadelta(self, theta, g, s, lr, t):
        rho = self.hyper.get("rho", 0.9)
        eps = self.hyper.get("epsilon", 1e-6)
        wd = self.hyper.get("weight_decay", 0.0)
        if t == 1:
            s["v"], s["u"] = numpy.zeros_like(theta), numpy.zeros_like(theta)
        if wd != 0:
            g = g + wd * theta
        s["v"] = s["v"] * rho + g**2 * (1 - rho)
        delta = numpy.sqrt(s["u"] + eps) / numpy.sqrt(s["v"] + eps) * g
        s["u"] = s["u"] * rho + delta**2 * (1 - rho)
        return theta - lr * delta

    def _rmsprop(self, theta, g, s, lr, t):
        alpha = self.hyper.get("rho", 0.99)
        eps = self.hyper.get("epsilon", 1e-8)
        mu = self.hyper.get("momentum", 0.0)
        wd = self.hyper.get("weight_decay", 0.0)
        centered = self.hyper.get("centered", False)
        if t == 1:
            s["v"], s["gave"], s["b"] = (numpy.zeros_like(theta) for _ in range(3))
        if wd != 0:
            g = g + wd * theta
        s["v"] = alpha * s["v"] + (1 - alpha) * g**2
        v_tilde = s["v"]
        if centered:
            s["gave"] = s["gave"] * alpha + (1 - alpha) * g
            v_tilde = v_tilde - s["gave"] ** 2
        if mu > 0:
            s["b"] = mu * s["b"] + g / (numpy.sqrt(v_tilde) + eps)
            return theta - lr * s["b"]
        return theta - lr * g / (numpy.sqrt(v_tilde) + eps)

    def _adam(self, theta, g, s, lr, t, decoupled=False):
        b1 = self.hyper.get("beta_1", 0.9)
        b2 = self.hyper.get("beta_2", 0.999)
        eps = self.hyper.get("epsilon", 1e-8)
        wd = self.hyper.get("weight_decay", 0.01 if decoupled else 0.0)
        amsgrad = self.hyper.get("amsgrad", False)
        if t == 1:
            s["m"], s["v"], s["vmax"] = (numpy.zeros_like(theta) for _ in range(3))
        if decoupled:
            theta = theta - lr * wd * theta
        elif wd != 0:
            g = g + wd * theta
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g**2
        m_hat = s["m"] / (1 - b1**t)
        if amsgrad:
            s["vmax"] = numpy.maximum(s["vmax"], s["v"])
            v_hat = s["vmax"] / (1 - b2**t)
        else:
            v_hat = s["v"] / (1 - b2**t)
        return theta - lr * m_hat / (numpy.sqrt(v_hat) + eps)

    def _adamw(self, theta, g, s, lr, t):
        return self._adam(theta, g, s, lr, t, decoupled=True)

    def _nadam(self, theta, g, s, lr, t):
        b1 = self.hyper.get("beta_1", 0.9)
        b2 = self.hyper.get("beta_2", 0.999)
        eps = self.hyper.get("epsilon", 1e-8)
        wd = self.hyper.get("weight_decay", 0.0)
        if t == 1:
            s["m"], s["v"] = numpy.zeros_like(theta), numpy.zeros_like(theta)
        if wd != 0:
            g = g + wd * theta
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g**2
        m_hat = (self.mu_next * s["m"] / (1 - self.mu_product * self.mu_next)
                 + (1 - self.mu_t) * g / (1 - self.mu_product))
        v_hat = s["v"] / (1 - b2**t)
        return theta - lr * m_hat / (numpy.sqrt(v_hat) + eps)
