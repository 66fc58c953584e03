"""Weight initialisers, drawn on the host from a seeded generator so every backend starts alike.

Glorot, He, LeCun and the fan-in uniform are presets of one variance-scaling rule:
``var = scale / fan`` with ``fan`` one of fan_in, fan_out or their mean; a normal draw has
``std = sqrt(var)``, a uniform draw has ``limit = sqrt(3 var)``.
"""

import math

from ._checks import finite, positive
from ._registry import Configurable, Registry
from .backend import host_full


class Initializer(Configurable):
    """Base class: ``init(shape, rng, fan_in, fan_out)`` returns a float64 host array."""

    def __call__(self, shape, rng, fan_in=None, fan_out=None):
        raise NotImplementedError



def compute_fans(shape):
    """(fan_in, fan_out) of a kernel of shape (in, out); a vector counts as (n, n)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


class Constant(Initializer):
    """Every entry equal to ``value``."""

    def __init__(self, value=0.0):
        self.value = finite("value", value)

    def __call__(self, shape, rng, fan_in=None, fan_out=None):
        return host_full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """Every entry 0."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Every entry 1."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class RandomNormal(Initializer):
    """N(mean, stddev^2)."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean = finite("mean", mean)
        self.stddev = positive("stddev", stddev)

    def __call__(self, shape, rng, fan_in=None, fan_out=None):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class StandardNormal(RandomNormal):
    """N(0, 1), torch.nn.Embedding's default."""

    def __init__(self):
        super().__init__(mean=0.0, stddev=1.0)

    def get_config(self):
        return {}


class RandomUniform(Initializer):
    """U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = finite("minval", minval), finite("maxval", maxval)
        if not self.minval < self.maxval:
            raise ValueError(f"minval must be below maxval, got {minval!r} and {maxval!r}.")

    def __call__(self, shape, rng, fan_in=None, fan_out=None):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class VarianceScaling(Initializer):
    """var = scale / fan; normal: std = sqrt(var); uniform: U(-sqrt(3 var), +sqrt(3 var))."""

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal"):
        self.scale = positive("scale", scale)
        if mode not in self.MODES:
            raise ValueError(f"Unknown mode {mode!r}; valid modes are {', '.join(self.MODES)}.")
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(
                f"Unknown distribution {distribution!r}; valid ones are {', '.join(self.DISTRIBUTIONS)}."
            )
        self.mode = mode
        self.distribution = distribution

    def __call__(self, shape, rng, fan_in=None, fan_out=None):
        default_in, default_out = compute_fans(shape)
        fan_in = default_in if fan_in is None else fan_in
        fan_out = default_out if fan_out is None else fan_out
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "normal":
            return rng.normal(0.0, math.sqrt(variance), size=shape)
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


def _preset(class_name, scale, mode, distribution, formula):
    def __init__(self, scale=scale):
        VarianceScaling.__init__(self, scale=scale, mode=mode, distribution=distribution)

    def get_config(self):
        return {} if self.scale == scale else {"scale": self.scale}

    doc = f"{formula} (VarianceScaling scale={scale:g}, {mode}, {distribution}); ``scale`` multiplies the variance."
    return type(class_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


FanInUniform = _preset("FanInUniform", 1.0 / 3.0, "fan_in", "uniform", "U(-1/sqrt(fan_in), +1/sqrt(fan_in))")
GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform", "U(-limit, limit), limit = sqrt(6/(fan_in+fan_out))")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "normal", "N(0, 2/(fan_in+fan_out))")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "U(-limit, limit), limit = sqrt(6/fan_in)")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "normal", "N(0, 2/fan_in)")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform", "U(-limit, limit), limit = sqrt(3/fan_in)")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "normal", "N(0, 1/fan_in)")


INITIALIZERS = Registry(
    "initializer",
    {
        "zeros": Zeros,
        "ones": Ones,
        "uniform": FanInUniform,
        "glorot_uniform": GlorotUniform,
        "glorot_normal": GlorotNormal,
        "xavier_uniform": GlorotUniform,
        "xavier_normal": GlorotNormal,
        "he_uniform": HeUniform,
        "he_normal": HeNormal,
        "lecun_uniform": LecunUniform,
        "lecun_normal": LecunNormal,
        "constant": Constant,
        "random_normal": RandomNormal,
        "normal": StandardNormal,
        "random_uniform": RandomUniform,
        "variance_scaling": VarianceScaling,
    },
    base=Initializer,
)


def get(identifier):
    """An Initializer from a name or an instance."""
    return INITIALIZERS.get(identifier)


def serialize(initializer):
    return INITIALIZERS.serialize(initializer)


def deserialize(config):
    return INITIALIZERS.deserialize(config)
