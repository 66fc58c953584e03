"""Optimizers with torch.optim's update rules over one flat parameter buffer.

An optimizer is built once beside the parameters (its state lives on their device, one flat
array per slot), then ``apply(params, grads)`` makes one step: clipping of the loss gradient,
then L2 weight decay ``g += wd * p`` (decoupled in AdamW), then the rule's ``update_step``.
Full-batch GD, SGD and mini-batch descent are one rule; batching belongs to the training loop.

Where the backend offers a fused kernel for a rule (``backend.fused_update(kernel)``: numba on the
CPU, when installed; a CuPy kernel on a GPU), weight decay and the update run in one pass over the
buffer; it makes the same operations in the same order as the array code below, so the results are
bitwise the same.

Adding a rule: subclass ``Optimizer`` with a ``name`` (that registers it, when the class is
defined, for ``get``, ``compile(optimizer=name)`` and ``load_model``), its ``slot_names`` and its
``update_step`` (the array code, which is the reference); that is all it needs to run on every
backend. A built-in rule's name, or a class name another rule has, is a ValueError; defining a
class again under its own name (a re-run notebook cell) replaces it. To give it one-pass kernels,
write the same operations once more per kernel language, each in its kernel module's table under
the rule's ``kernel`` name: a numba function in ``backend/_fused_kernels.py`` (KERNELS) and a CuPy
ElementwiseKernel in ``backend/_cupy_kernels.py`` (OPTIMIZERS); then ``fused_step`` passes them the
scalars rounded as the array code rounds them. ``tests/test_fused_updates.py`` checks each kernel
against the array code, bit for bit, once the rule is added to its list.
"""

from . import schedules
from ._checks import fraction, non_negative, positive_or_none
from ._registry import Configurable, Registry


_RULES = {}  # name -> class, filled as the classes are defined


def _register(cls):
    """Put ``cls`` in the table under its ``name``; a ValueError where it would hide a built-in rule
    or share its class name (what a saved model records) with another registered rule."""
    if not isinstance(cls.name, str) or not cls.name.strip():
        raise ValueError(f"{cls.__qualname__}.name must be a non-empty string, got {cls.name!r}.")
    key = cls.name.strip().lower()
    taken = _RULES.get(key)
    if taken is not None and taken.__module__ == __name__:
        raise ValueError(f"{cls.__qualname__}: the optimizer name {cls.name!r} is taken by the built-in "
                         f"{taken.__name__}; choose another name.")
    twin = next((rule for name, rule in _RULES.items() if rule.__name__ == cls.__name__ and name != key), None)
    if twin is not None:
        raise ValueError(f"{cls.__qualname__}: the class name {cls.__name__!r} is taken by the optimizer "
                         f"{twin.name!r}, and a saved model names its optimizer by class; rename the class.")
    _RULES[key] = cls


class Optimizer(Configurable):
    """Base class: learning rate (float or schedule), weight decay and gradient clipping."""

    name = "optimizer"
    kernel = None
    """The name of the backends' fused kernel for this rule (None: the rule's ``name``)."""
    slot_names = ()

    def __init_subclass__(cls, **kwargs):
        """Register a subclass whose body sets ``name`` (see the module's docstring)."""
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls):
            _register(cls)

    def __init__(self, learning_rate, weight_decay=0.0, clipnorm=None, global_clipnorm=None,
                 clipvalue=None):
        self.learning_rate = schedules.check_learning_rate(learning_rate)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        given = [name for name, value in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm),
                                          ("clipvalue", clipvalue)) if value is not None]
        if len(given) > 1:
            raise ValueError(f"Give at most one of clipnorm, global_clipnorm and clipvalue, not {' and '.join(given)}.")
        self.clipnorm = positive_or_none("clipnorm", clipnorm)
        self.global_clipnorm = positive_or_none("global_clipnorm", global_clipnorm)
        self.clipvalue = positive_or_none("clipvalue", clipvalue)
        self.iterations = 0
        self.slots = {}
        self._xp = None

    def build(self, backend, params):
        """Allocate the state beside ``params`` (a flat array); called once before the first step."""
        xp = backend.xp
        self._xp = xp
        self.slots = {name: xp.zeros_like(params) for name in self.slot_names}
        self._scratch = xp.empty_like(params)
        self.iterations = 0
        fused_update = getattr(backend, "fused_update", None)
        self._fused = None
        if fused_update is not None and _defined_in(type(self), "fused_step") is _defined_in(type(self), "update_step"):
            self._fused = fused_update(self.kernel or self.name, params)  # a subclass with its own update_step keeps it

    @property
    def built(self):
        return self._xp is not None

    def current_learning_rate(self):
        """The learning rate for the next step (a schedule is read at ``iterations``)."""
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            return float(self.learning_rate(self.iterations))
        return self.learning_rate

    def apply(self, params, grads, segments=()):
        """One step on the flat ``params`` from the flat ``grads`` (used as scratch).

        ``segments`` are the slices of the individual tensors, for per-tensor clipnorm; without
        them the whole buffer counts as one tensor.
        """
        lr = self.current_learning_rate()
        self.iterations += 1
        self.clip(grads, segments)
        if self._fused is not None:
            decay = bool(self.weight_decay) and not self.decoupled_weight_decay
            self.fused_step(params, grads, lr, self.iterations, params.dtype.type, decay)
            return
        if self.weight_decay and not self.decoupled_weight_decay:
            grads += self.weight_decay * params
        self.update_step(params, grads, lr, self.iterations)

    _fused = None

    def fused_step(self, p, g, lr, step, scalar, decay):
        """The fused kernel's call: weight decay (when ``decay``) and ``update_step`` in one loop,
        with every scalar rounded to the parameters' dtype (``scalar``) as NumPy rounds it."""
        raise NotImplementedError

    decoupled_weight_decay = False

    def clip(self, grads, segments=()):
        """Clip in place: g * c / max(||g||, c) per tensor or globally, or each entry to [-c, c]."""
        xp = self._xp
        if self.clipvalue is not None:
            xp.clip(grads, -self.clipvalue, self.clipvalue, out=grads)
        elif self.global_clipnorm is not None:
            grads *= self.global_clipnorm / xp.maximum(xp.sqrt(grads @ grads), self.global_clipnorm)
        elif self.clipnorm is not None:
            for part in segments or (slice(None),):
                g = grads[part]
                g *= self.clipnorm / xp.maximum(xp.sqrt(g @ g), self.clipnorm)

    def update_step(self, p, g, lr, step):
        raise NotImplementedError

    def get_config(self):
        config = {
            "learning_rate": schedules.serialize_learning_rate(self.learning_rate),
            "weight_decay": self.weight_decay,
        }
        for name in ("clipnorm", "global_clipnorm", "clipvalue"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config

    def get_state(self):
        """Scalars and slot arrays that let training resume where it stopped."""
        return {"iterations": self.iterations}, dict(self.slots)

    def set_state(self, scalars, slots):
        self.iterations = int(scalars.get("iterations", 0))
        for name, value in slots.items():
            self.slots[name][...] = self._xp.asarray(value, dtype=self.slots[name].dtype)


class SGD(Optimizer):
    """b = mu b + g; g = g + mu b (Nesterov) or b; p -= lr g. Plain descent when momentum is 0."""

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.momentum = non_negative("momentum", momentum)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0.")
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def update_step(self, p, g, lr, step):
        if self.momentum:
            b = self.slots["momentum"]
            b *= self.momentum
            b += g
            if self.nesterov:
                g += self.momentum * b
            else:
                g = b
        p -= _scaled(self._xp, g, lr, self._scratch)

    def fused_step(self, p, g, lr, step, scalar, decay):
        b = self.slots["momentum"] if self.momentum else p
        self._fused(p, g, b, scalar(lr), scalar(self.weight_decay), decay, scalar(self.momentum),
                    bool(self.momentum), self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """s += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)."""

    name = "adagrad"
    slot_names = ("sum",)

    def __init__(self, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-10,
                 weight_decay=0.0, lr_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.initial_accumulator_value = non_negative("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = non_negative("epsilon", epsilon)
        self.lr_decay = non_negative("lr_decay", lr_decay)

    def build(self, backend, params):
        super().build(backend, params)
        self.slots["sum"] += self.initial_accumulator_value

    def update_step(self, p, g, lr, step):
        xp, t = self._xp, self._scratch
        clr = lr / (1 + (step - 1) * self.lr_decay)
        s = self.slots["sum"]
        s += xp.multiply(g, g, out=t)
        xp.sqrt(s, out=t)
        t += self.epsilon
        _subtract_scaled_ratio(xp, p, g, clr, t, out=g)

    def fused_step(self, p, g, lr, step, scalar, decay):
        clr = lr / (1 + (step - 1) * self.lr_decay)
        self._fused(p, g, self.slots["sum"], scalar(clr), scalar(self.epsilon), scalar(self.weight_decay), decay)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "lr_decay": self.lr_decay}


class Adadelta(Optimizer):
    """v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d^2; p -= lr d."""

    name = "adadelta"
    slot_names = ("square_avg", "acc_delta")

    def __init__(self, learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.rho = fraction("rho", rho)
        self.epsilon = non_negative("epsilon", epsilon)

    def update_step(self, p, g, lr, step):
        xp, t = self._xp, self._scratch
        v, u = self.slots["square_avg"], self.slots["acc_delta"]
        _decay_add_square(xp, v, g, self.rho, t)
        std = xp.sqrt(v + self.epsilon)
        delta = xp.sqrt(u + self.epsilon)
        delta /= std
        delta *= g
        _decay_add_square(xp, u, delta, self.rho, t)
        p -= _scaled(xp, delta, lr, t)

    def fused_step(self, p, g, lr, step, scalar, decay):
        self._fused(p, g, self.slots["square_avg"], self.slots["acc_delta"], scalar(lr), scalar(self.rho),
                    scalar(1 - self.rho), scalar(self.epsilon), scalar(self.weight_decay), decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """v = rho v + (1 - rho) g^2; centered: a = v - gbar^2 with gbar = rho gbar + (1 - rho) g;
    d = g / (sqrt(a) + eps); with momentum b = mu b + d, p -= lr b, else p -= lr d."""

    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.99, momentum=0.0, epsilon=1e-8, centered=False,
                 weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.rho = fraction("rho", rho)
        self.momentum = non_negative("momentum", momentum)
        self.epsilon = non_negative("epsilon", epsilon)
        self.centered = bool(centered)
        self.slot_names = ("square_avg",) + (("grad_avg",) if self.centered else ()) + (
            ("momentum",) if self.momentum else ())

    def update_step(self, p, g, lr, step):
        xp, t = self._xp, self._scratch
        v = self.slots["square_avg"]
        _decay_add_square(xp, v, g, self.rho, t)
        if self.centered:
            gbar = self.slots["grad_avg"]
            _lerp(xp, gbar, g, 1 - self.rho, t)
            xp.multiply(gbar, gbar, out=t)
            xp.subtract(v, t, out=t)
            xp.sqrt(t, out=t)
        else:
            xp.sqrt(v, out=t)
        t += self.epsilon
        if self.momentum:
            b = self.slots["momentum"]
            b *= self.momentum
            b += xp.divide(g, t, out=t)
            p -= _scaled(xp, b, lr, t)
        else:
            _subtract_scaled_ratio(xp, p, g, lr, t, out=g)

    def fused_step(self, p, g, lr, step, scalar, decay):
        slots = self.slots
        self._fused(p, g, slots["square_avg"], slots.get("grad_avg", p), slots.get("momentum", p), scalar(lr),
                    scalar(self.rho), scalar(1 - self.rho), scalar(self.epsilon), scalar(self.weight_decay), decay,
                    self.centered, scalar(self.momentum), bool(self.momentum))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2 (amsgrad: vmax = max(vmax, v));
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    name = "adam"
    kernel = "adam"  # AdamW's too

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False,
                 weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = fraction("beta_1", beta_1)
        self.beta_2 = fraction("beta_2", beta_2)
        self.epsilon = non_negative("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("m", "v") + (("vmax",) if self.amsgrad else ())

    def update_step(self, p, g, lr, step):
        xp, t = self._xp, self._scratch
        m, v = self.slots["m"], self.slots["v"]
        if self.decoupled_weight_decay and self.weight_decay:
            p *= 1 - lr * self.weight_decay
        _lerp(xp, m, g, 1 - self.beta_1, t)
        _decay_add_square(xp, v, g, self.beta_2, t)
        if self.amsgrad:
            v = xp.maximum(self.slots["vmax"], v, out=self.slots["vmax"])
        step_size = lr / (1 - self.beta_1**step)
        xp.sqrt(v, out=t)
        t /= (1 - self.beta_2**step) ** 0.5
        t += self.epsilon
        _subtract_scaled_ratio(xp, p, m, step_size, t, out=g)

    def fused_step(self, p, g, lr, step, scalar, decay):
        slots = self.slots
        decoupled = self.decoupled_weight_decay and bool(self.weight_decay)
        self._fused(p, g, slots["m"], slots["v"], slots.get("vmax", p), scalar(lr / (1 - self.beta_1**step)),
                    scalar(1 - self.beta_1), scalar(self.beta_2), scalar(1 - self.beta_2),
                    scalar((1 - self.beta_2**step) ** 0.5), scalar(self.epsilon), scalar(self.weight_decay), decay,
                    scalar(1 - lr * self.weight_decay), decoupled, self.amsgrad)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr wd before the Adam step."""

    name = "adamw"
    decoupled_weight_decay = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01,
                 amsgrad=False, **clipping):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay, **clipping)


class Nadam(Optimizer):
    """Adam with Nesterov momentum (torch NAdam): mu_t = b1 (1 - 0.96^(t psi) / 2);
    p -= lr (1 - mu_t) / (1 - prod mu) g / d + lr mu_{t+1} / (1 - prod mu * mu_{t+1}) m / d,
    d = sqrt(v / (1 - b2^t)) + eps."""

    name = "nadam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.002, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                 momentum_decay=0.004, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = fraction("beta_1", beta_1)
        self.beta_2 = fraction("beta_2", beta_2)
        self.epsilon = non_negative("epsilon", epsilon)
        self.momentum_decay = non_negative("momentum_decay", momentum_decay)
        self.mu_product = 1.0

    def build(self, backend, params):
        super().build(backend, params)
        self.mu_product = 1.0

    def update_step(self, p, g, lr, step):
        xp, t = self._xp, self._scratch
        m, v = self.slots["m"], self.slots["v"]
        mu, mu_next = self._advance_mu(p, step)
        _lerp(xp, m, g, 1 - self.beta_1, t)
        _decay_add_square(xp, v, g, self.beta_2, t)
        denom = v / (1 - self.beta_2**step)
        xp.sqrt(denom, out=denom)
        denom += self.epsilon
        _subtract_scaled_ratio(xp, p, g, lr * (1 - mu) / (1 - self.mu_product), denom, out=g)
        _subtract_scaled_ratio(xp, p, m, lr * mu_next / (1 - self.mu_product * mu_next), denom, out=t)

    def _advance_mu(self, p, step):
        """mu_t and mu_{t+1}; multiplies mu_t into the running product."""
        mu = self.beta_1 * (1 - 0.5 * 0.96 ** (step * self.momentum_decay))
        mu_next = self.beta_1 * (1 - 0.5 * 0.96 ** ((step + 1) * self.momentum_decay))
        # kept in the parameters' dtype, as torch keeps it in its default dtype (float32)
        scalar = p.dtype.type
        self.mu_product = float(scalar(self.mu_product) * scalar(mu))
        return mu, mu_next

    def fused_step(self, p, g, lr, step, scalar, decay):
        mu, mu_next = self._advance_mu(p, step)
        self._fused(p, g, self.slots["m"], self.slots["v"], scalar(1 - self.beta_1), scalar(self.beta_2),
                    scalar(1 - self.beta_2), scalar(1 - self.beta_2**step), scalar(self.epsilon),
                    scalar(lr * (1 - mu) / (1 - self.mu_product)),
                    scalar(lr * mu_next / (1 - self.mu_product * mu_next)), scalar(self.weight_decay), decay)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "momentum_decay": self.momentum_decay}

    def get_state(self):
        scalars, slots = super().get_state()
        return {**scalars, "mu_product": self.mu_product}, slots

    def set_state(self, scalars, slots):
        super().set_state(scalars, slots)
        self.mu_product = float(scalars.get("mu_product", 1.0))


def _defined_in(cls, attribute):
    """The class in ``cls``'s MRO whose body defines ``attribute``."""
    return next((klass for klass in cls.__mro__ if attribute in vars(klass)), None)


def _scaled(xp, a, factor, out):
    """factor * a, written into ``out``."""
    return xp.multiply(a, factor, out=out)


def _subtract_scaled_ratio(xp, p, a, factor, denom, out):
    """p -= (factor * a) / denom, in torch's ``addcdiv`` order; ``out`` (scratch) may be ``a``."""
    xp.multiply(a, factor, out=out)
    out /= denom
    p -= out


def _lerp(xp, avg, g, weight, scratch):
    """avg += weight * (g - avg), in place."""
    xp.subtract(g, avg, out=scratch)
    scratch *= weight
    avg += scratch


def _decay_add_square(xp, avg, g, rho, scratch):
    """avg = rho avg + (1 - rho) g^2, in place."""
    avg *= rho
    xp.multiply(g, 1 - rho, out=scratch)
    scratch *= g
    avg += scratch


OPTIMIZERS = Registry("optimizer", _RULES, base=Optimizer)


def get(identifier):
    """An Optimizer from a name (default hyperparameters) or an instance."""
    return OPTIMIZERS.get(identifier)


def serialize(optimizer):
    return OPTIMIZERS.serialize(optimizer)


def deserialize(config):
    return OPTIMIZERS.deserialize(config)
