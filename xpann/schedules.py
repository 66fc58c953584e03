"""Learning-rate schedules: functions of the optimizer step (0 for the first update)."""

import math

from ._checks import fraction, positive, positive_int
from ._registry import Configurable, Registry


class LearningRateSchedule(Configurable):
    """Base class: ``schedule(step)`` is the learning rate at ``step``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError


class ExponentialDecay(LearningRateSchedule):
    """lr = initial * decay_rate ^ (step / decay_steps), the exponent floored when ``staircase``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = positive_int("decay_steps", decay_steps)
        self.decay_rate = positive("decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class StepDecay(LearningRateSchedule):
    """lr = initial * gamma ^ floor(step / step_size) (torch's StepLR, counted in steps)."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        self.initial_learning_rate = positive("initial_learning_rate", initial_learning_rate)
        self.step_size = positive_int("step_size", step_size)
        self.gamma = positive("gamma", gamma)

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "step_size": self.step_size,
                "gamma": self.gamma}


class CosineDecay(LearningRateSchedule):
    """lr = initial * ((1 - alpha) * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2 + alpha)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        self.initial_learning_rate = positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = positive_int("decay_steps", decay_steps)
        self.alpha = fraction("alpha", alpha, high_inclusive=True)

    def __call__(self, step):
        progress = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha}


SCHEDULES = Registry(
    "schedule",
    {"exponential_decay": ExponentialDecay, "step_decay": StepDecay, "cosine_decay": CosineDecay},
    base=LearningRateSchedule,
)


def check_learning_rate(value):
    """A positive float or a schedule; anything else is a ValueError."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, dict):
        return SCHEDULES.deserialize(value)
    return positive("learning_rate", value)


def serialize_learning_rate(value):
    if isinstance(value, LearningRateSchedule):
        return SCHEDULES.serialize(value)
    return value
