"""Losses reduced to a mean over the batch, each with its gradient.

``value_and_grad(backend, y_true, y_pred, sample_weight=None)`` returns the loss as a 0-d device
array (no host sync) and dL/dy_pred. The cross-entropies also offer ``logits_value_and_grad``:
the loss of ``activation(logits)`` and its gradient with respect to the logits, fused and stable
for any logits, which a model uses when its output layer ends in the matching softmax or sigmoid.

With per-sample weights ``w`` the batch loss is ``sum(w_i * loss_i) / n`` (Keras' reduction),
``loss_i`` each sample's loss (the mean over its outputs for mse, mae, huber and binary
cross-entropy); rmse is the square root of the weighted mse. Each loss gives its per-sample
values and their gradient in ``per_sample`` (and ``logits_per_sample`` for the cross-entropies);
the unweighted path stays the fast one.
"""

from . import activations
from ._checks import fraction, positive
from ._registry import Configurable, Registry
from .backend import get_backend

EPSILON = 1e-7


class Loss(Configurable):
    """Base class. ``sparse_targets`` is True when y_true holds class indices, not values."""

    name = "loss"
    sparse_targets = False
    output_activation = None

    def __call__(self, y_true, y_pred):
        """The loss as a Python float, on the backend in force."""
        backend = get_backend()
        y_pred = backend.asarray(y_pred)
        if not y_pred.dtype.kind == "f":
            y_pred = y_pred.astype("float64")
        y_true = backend.asarray(y_true)
        if self.sparse_targets:
            y_true = y_true.reshape(-1).astype("int64")  # labels may come as whole-number floats
        else:
            y_true = y_true.astype(y_pred.dtype).reshape(y_pred.shape)
        return float(self.value_and_grad(backend, y_true, y_pred)[0])

    def value_and_grad(self, backend, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return self.mean_value_and_grad(backend, y_true, y_pred)
        return _weighted(backend, self.per_sample(backend, y_true, y_pred), sample_weight)

    def mean_value_and_grad(self, backend, y_true, y_pred):
        """The unweighted batch loss and its gradient."""
        raise NotImplementedError

    def per_sample(self, backend, y_true, y_pred):
        """(loss_i for each sample, d loss_i / d y_pred row by row)."""
        raise NotImplementedError

    def fuses_with(self, activation):
        """True when this loss on ``activation``'s output is better computed from its logits."""
        return (
            self.output_activation is not None
            and not getattr(self, "from_logits", True)
            and isinstance(activation, self.output_activation)
        )


def _weighted(backend, per_sample, sample_weight):
    """sum(w_i loss_i) / n and its gradient, from per-sample losses and their row gradients."""
    values, grad = per_sample
    n = values.shape[0]
    w = sample_weight.astype(values.dtype, copy=False)
    loss = backend.xp.dot(values, w) / n
    scale = (w / n).reshape((n,) + (1,) * (grad.ndim - 1))
    return loss, grad * scale


def _mean(per_sample):
    """The unweighted batch loss and its gradient from per-sample losses and their row gradients."""
    values, grad = per_sample
    return values.mean(), grad * (1.0 / max(values.shape[0], 1))


def _row_mean(r):
    """Each row's mean over the outputs (a 1-D r is one output per sample)."""
    return r.reshape(r.shape[0], -1).mean(axis=1)


def _per_output(r):
    """1 / (outputs per sample), for gradients of a row mean."""
    return 1.0 / max(r[0].size, 1) if r.shape[0] else 1.0


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)^2); grad 2 r / size."""

    name = "mean_squared_error"

    def mean_value_and_grad(self, backend, y_true, y_pred):
        r = y_pred - y_true
        return (r * r).mean(), r * (2.0 / r.size)

    def per_sample(self, backend, y_true, y_pred):
        r = y_pred - y_true
        return _row_mean(r * r), r * (2.0 * _per_output(r))


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|); grad sign(r) / size."""

    name = "mean_absolute_error"

    def mean_value_and_grad(self, backend, y_true, y_pred):
        r = y_pred - y_true
        return backend.xp.abs(r).mean(), backend.xp.sign(r) * (1.0 / r.size)

    def per_sample(self, backend, y_true, y_pred):
        r = y_pred - y_true
        return _row_mean(backend.xp.abs(r)), backend.xp.sign(r) * _per_output(r)


class RootMeanSquaredError(Loss):
    """sqrt(mean(r^2)); grad r / (size * loss), 0 where the loss is 0."""

    name = "root_mean_squared_error"

    def mean_value_and_grad(self, backend, y_true, y_pred):
        xp = backend.xp
        r = y_pred - y_true
        loss = xp.sqrt((r * r).mean())
        tiny = xp.finfo(r.dtype).tiny
        return loss, r / (r.size * xp.maximum(loss, tiny))

    def value_and_grad(self, backend, y_true, y_pred, sample_weight=None):
        """sqrt(sum(w_i mse_i) / n); grad w_i r / (n k loss)."""
        if sample_weight is None:
            return self.mean_value_and_grad(backend, y_true, y_pred)
        xp = backend.xp
        mse, grad = _weighted(backend, MeanSquaredError().per_sample(backend, y_true, y_pred), sample_weight)
        loss = xp.sqrt(mse)
        return loss, grad / (2 * xp.maximum(loss, xp.finfo(grad.dtype).tiny))


class Huber(Loss):
    """mean(0.5 r^2 where |r| <= delta, else delta (|r| - delta/2)); grad clip(r, -delta, delta) / size."""

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = positive("delta", delta)

    def mean_value_and_grad(self, backend, y_true, y_pred):
        xp = backend.xp
        r = y_pred - y_true
        a = xp.abs(r)
        d = self.delta
        loss = xp.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d)).mean()
        return loss, xp.clip(r, -d, d) * (1.0 / r.size)

    def per_sample(self, backend, y_true, y_pred):
        xp = backend.xp
        r = y_pred - y_true
        a = xp.abs(r)
        d = self.delta
        return _row_mean(xp.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))), xp.clip(r, -d, d) * _per_output(r)

    def get_config(self):
        return {"delta": self.delta}


class _CrossEntropy(Loss):
    """``label_smoothing`` (ls, in [0, 1)) trains on softened targets, as Keras and torch do:
    y (1 - ls) + ls / K over K classes (K = 2 for the binary loss)."""

    def __init__(self, from_logits=False, label_smoothing=0.0):
        if not isinstance(from_logits, bool):
            raise ValueError(f"from_logits must be True or False, got {from_logits!r}.")
        self.from_logits = from_logits
        self.label_smoothing = fraction("label_smoothing", label_smoothing)

    def value_and_grad(self, backend, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            return self.logits_value_and_grad(backend, y_true, y_pred, sample_weight=sample_weight)
        y_true = self._smoothed(y_true)
        if sample_weight is None:
            return self.probabilities_value_and_grad(backend, y_true, y_pred)
        return _weighted(backend, self.per_sample(backend, y_true, y_pred), sample_weight)

    def logits_value_and_grad(self, backend, y_true, logits, reuse=False, sample_weight=None):
        """The loss of activation(logits) and its gradient with respect to the logits."""
        y_true = self._smoothed(y_true)
        if sample_weight is None:
            return self.logits_mean_value_and_grad(backend, y_true, logits, reuse)
        return _weighted(backend, self.logits_per_sample(backend, y_true, logits), sample_weight)

    def _smoothed(self, y_true):
        """The targets the loss compares with: y (1 - ls) + ls / K for dense targets."""
        if not self.label_smoothing:
            return y_true
        return y_true * (1 - self.label_smoothing) + self.label_smoothing / self._classes(y_true)

    def _classes(self, y_true):
        """K of the smoothing: one class per output."""
        return y_true.shape[-1]

    def get_config(self):
        config = {"from_logits": self.from_logits}
        if self.label_smoothing:
            config["label_smoothing"] = self.label_smoothing
        return config


def _clipped(xp, p):
    """p clipped to [EPSILON, 1 - EPSILON] and the mask of entries left as they were."""
    return xp.clip(p, EPSILON, 1 - EPSILON), (p > EPSILON) & (p < 1 - EPSILON)


def _log_softmax(xp, z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


class BinaryCrossentropy(_CrossEntropy):
    """-mean(y log p + (1 - y) log(1 - p)), p = sigmoid(z) from logits;
    from logits: mean(max(z, 0) - z y + log1p(exp(-|z|))), grad (sigmoid(z) - y) / size."""

    name = "binary_crossentropy"
    output_activation = activations.Sigmoid

    def _classes(self, y_true):
        return 2  # each output is a yes/no

    def probabilities_value_and_grad(self, backend, y_true, y_pred):
        xp = backend.xp
        p, inside = _clipped(xp, y_pred)
        loss = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p)).mean()
        grad = xp.where(inside, (p - y_true) / (p * (1 - p)), 0) * (1.0 / p.size)
        return loss, grad

    def per_sample(self, backend, y_true, y_pred):
        xp = backend.xp
        p, inside = _clipped(xp, y_pred)
        values = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))
        grad = xp.where(inside, (p - y_true) / (p * (1 - p)), 0) * _per_output(p)
        return _row_mean(values), grad

    def logits_mean_value_and_grad(self, backend, y_true, logits, reuse=False):
        xp = backend.xp
        z = logits
        loss = (xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))).mean()
        return loss, (activations.sigmoid(xp, z) - y_true) * (1.0 / z.size)

    def logits_per_sample(self, backend, y_true, logits):
        xp = backend.xp
        z = logits
        values = xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))
        return _row_mean(values), (activations.sigmoid(xp, z) - y_true) * _per_output(z)


class CategoricalCrossentropy(_CrossEntropy):
    """-mean over samples of sum_k y_k log p_k with one-hot (or soft) targets;
    from logits p = softmax(z) and grad (sum_k y_k) softmax(z) - y, over the batch size."""

    name = "categorical_crossentropy"
    output_activation = activations.Softmax

    def probabilities_value_and_grad(self, backend, y_true, y_pred):
        xp = backend.xp
        n = y_pred.shape[0]
        p, inside = _clipped(xp, y_pred)
        loss = -(y_true * xp.log(p)).sum() / n
        return loss, xp.where(inside, -y_true / p, 0) * (1.0 / n)

    def per_sample(self, backend, y_true, y_pred):
        xp = backend.xp
        p, inside = _clipped(xp, y_pred)
        return -(y_true * xp.log(p)).sum(axis=-1), xp.where(inside, -y_true / p, 0)

    def logits_mean_value_and_grad(self, backend, y_true, logits, reuse=False):
        xp = backend.xp
        n = logits.shape[0]
        log_p = _log_softmax(xp, logits)
        loss = -(y_true * log_p).sum() / n
        grad = xp.exp(log_p) * y_true.sum(axis=-1, keepdims=True) - y_true
        return loss, grad * (1.0 / n)

    def logits_per_sample(self, backend, y_true, logits):
        xp = backend.xp
        log_p = _log_softmax(xp, logits)
        return -(y_true * log_p).sum(axis=-1), xp.exp(log_p) * y_true.sum(axis=-1, keepdims=True) - y_true


class SparseCategoricalCrossentropy(_CrossEntropy):
    """-mean_i log p[i, label_i] with integer labels; from logits grad (softmax(z) - onehot) / n.
    With label smoothing ls over K classes (torch's formula): loss_i = -(1 - ls) log p[i, label_i]
    - (ls / K) sum_k log p[i, k], from logits grad softmax(z) - (1 - ls) onehot - ls / K."""

    name = "sparse_categorical_crossentropy"
    sparse_targets = True
    output_activation = activations.Softmax

    def _smoothed(self, y_true):
        return y_true  # integer labels: the smoothing enters the formulas below

    def probabilities_value_and_grad(self, backend, y_true, y_pred):
        xp = backend.xp
        if self.label_smoothing:
            return _mean(self.per_sample(backend, y_true, y_pred))
        n = y_pred.shape[0]
        rows = xp.arange(n)
        p_label = y_pred[rows, y_true]
        p, inside = _clipped(xp, p_label)
        loss = -xp.log(p).mean()
        grad = xp.zeros_like(y_pred)
        grad[rows, y_true] = xp.where(inside, -1 / p, 0) * (1.0 / n)
        return loss, grad

    def per_sample(self, backend, y_true, y_pred):
        xp = backend.xp
        rows = xp.arange(y_pred.shape[0])
        ls = self.label_smoothing
        if ls:
            p, inside = _clipped(xp, y_pred)
            target = xp.full_like(y_pred, ls / y_pred.shape[-1])
            target[rows, y_true] += 1 - ls
            return -(target * xp.log(p)).sum(axis=-1), xp.where(inside, -target / p, 0)
        p, inside = _clipped(xp, y_pred[rows, y_true])
        grad = xp.zeros_like(y_pred)
        grad[rows, y_true] = xp.where(inside, -1 / p, 0)
        return -xp.log(p), grad

    def logits_per_sample(self, backend, y_true, logits):
        xp = backend.xp
        log_p = _log_softmax(xp, logits)
        rows = xp.arange(logits.shape[0])
        grad = xp.exp(log_p)
        ls = self.label_smoothing
        if ls:
            k = logits.shape[-1]
            grad -= ls / k
            grad[rows, y_true] -= 1 - ls
            return -(1 - ls) * log_p[rows, y_true] - (ls / k) * log_p.sum(axis=-1), grad
        grad[rows, y_true] -= 1
        return -log_p[rows, y_true], grad

    def logits_mean_value_and_grad(self, backend, y_true, logits, reuse=False):
        """The loss and (softmax(z) - onehot) / n in few passes over small arrays.

        shifted = z - max(z); e = exp(shifted); s = sum(e); loss = mean(log s - shifted[label]);
        grad = e / (n s), less 1/n at the labels. With ``reuse`` the buffers are kept for the
        next call of the same shape (the gradient is then valid until that call): the training
        step uses it; any other caller gets fresh arrays. With label smoothing: the mean of
        ``logits_per_sample``."""
        xp = backend.xp
        if self.label_smoothing:
            return _mean(self.logits_per_sample(backend, y_true, logits))
        space = self._space(backend, logits) if reuse else _SoftmaxSpace(backend, logits)
        if space.kernel is not None and space.kernel(logits, y_true, space.grad, space.per_sample):  # one pass
            return xp.dot(space.per_sample, space.weights), space.grad
        n = space.n
        shifted = xp.subtract(logits, logits.max(axis=-1, keepdims=True), out=space.shifted)
        grad = xp.exp(shifted, out=space.grad)
        total = backend.gemm(grad, space.ones_classes, out=space.total)  # row sums as a product
        index = space.label_index(xp, y_true)
        per_sample = xp.log(total, out=space.per_sample)
        per_sample -= space.shifted_flat.take(index)
        loss = xp.dot(per_sample, space.weights)  # the mean, as a product with 1/n weights
        total *= n
        xp.divide(grad, space.total_column, out=grad)
        at_labels = space.grad_flat.take(index)
        at_labels -= space.inverse_n
        space.grad_flat.put(index, at_labels)
        return loss, grad

    def _space(self, backend, logits):
        space = self.__dict__.get("_training_space")
        if space is None or not space.fits(logits):
            space = self._training_space = _SoftmaxSpace(backend, logits)
        return space


class _SoftmaxSpace:
    """Buffers of the fused sparse softmax cross-entropy for one shape, layout and dtype of logits.

    The two (n, k) buffers are views of flat arrays laid out like the logits (row- or
    column-major), so that the labels' entries are reached through one flat index per sample."""

    def __init__(self, backend, logits):
        xp = backend.xp
        # the backend's one-pass kernel (a GPU's), looked up once per shape: a lookup costs host time
        self.kernel = getattr(backend, "fused_kernel", lambda name: None)("sparse_softmax_crossentropy")
        n, k = logits.shape
        dtype = logits.dtype
        self.n, self.k, self.dtype = n, k, dtype
        self.fortran = bool(logits.flags.f_contiguous and not logits.flags.c_contiguous)
        self.shifted_flat = xp.empty(n * k, dtype=dtype)
        self.grad_flat = xp.empty(n * k, dtype=dtype)
        if self.fortran:  # entry (i, j) at j * n + i
            self.shifted = self.shifted_flat.reshape(k, n).T
            self.grad = self.grad_flat.reshape(k, n).T
            self.row_offsets = xp.arange(n)
        else:  # entry (i, j) at i * k + j
            self.shifted = self.shifted_flat.reshape(n, k)
            self.grad = self.grad_flat.reshape(n, k)
            self.row_offsets = xp.arange(n) * k
        self.index = xp.empty(n, dtype="int64")
        self.ones_classes = xp.ones(k, dtype=dtype)
        self.total = xp.empty(n, dtype=dtype)
        self.total_column = self.total[:, None]
        self.per_sample = xp.empty(n, dtype=dtype)
        self.weights = xp.full(n, 1.0 / max(n, 1), dtype=dtype)
        self.inverse_n = dtype.type(1.0 / max(n, 1))

    def fits(self, logits):
        fortran = bool(logits.flags.f_contiguous and not logits.flags.c_contiguous)
        return logits.shape == (self.n, self.k) and logits.dtype == self.dtype and fortran == self.fortran

    def label_index(self, xp, labels):
        """The flat index of each sample's label entry."""
        if self.fortran:
            xp.multiply(labels, self.n, out=self.index)
            return xp.add(self.index, self.row_offsets, out=self.index)
        return xp.add(labels, self.row_offsets, out=self.index)


LOSSES = Registry(
    "loss",
    {
        "mean_squared_error": MeanSquaredError,
        "mse": MeanSquaredError,
        "mean_absolute_error": MeanAbsoluteError,
        "mae": MeanAbsoluteError,
        "root_mean_squared_error": RootMeanSquaredError,
        "rmse": RootMeanSquaredError,
        "huber": Huber,
        "binary_crossentropy": BinaryCrossentropy,
        "categorical_crossentropy": CategoricalCrossentropy,
        "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    },
    base=Loss,
)


def get(identifier):
    """A Loss from a name or an instance."""
    return LOSSES.get(identifier)


def serialize(loss):
    return LOSSES.serialize(loss)


def deserialize(config):
    return LOSSES.deserialize(config)
