"""Weight penalties added to the loss, Keras' meaning: L1 ``l1 * sum(|w|)``, L2 ``l2 * sum(w^2)``,
L1L2 both. ``gradient`` is the penalty's derivative, added to the tensor's loss gradient."""

from ._checks import non_negative
from ._registry import Configurable, Registry


class Regularizer(Configurable):
    """Base class: ``penalty(xp, w)`` (a 0-d device array) and ``add_gradient(xp, w, g)`` (in place)."""

    def penalty(self, xp, w):
        raise NotImplementedError

    def add_gradient(self, xp, w, g):
        raise NotImplementedError


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2); gradient l1 * sign(w) + 2 l2 w."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = non_negative("l1", l1)
        self.l2 = non_negative("l2", l2)

    def penalty(self, xp, w):
        total = 0.0
        if self.l1:
            total = self.l1 * xp.abs(w).sum()
        if self.l2:
            total = total + self.l2 * xp.vdot(w, w)
        return total

    def add_gradient(self, xp, w, g):
        if self.l1:
            g += self.l1 * xp.sign(w)
        if self.l2:
            g += (2 * self.l2) * w

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w^2)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


REGULARIZERS = Registry("regularizer", {"l1": L1, "l2": L2, "l1_l2": L1L2}, base=Regularizer)


def get(identifier):
    """A Regularizer from a name (default strength 0.01), an instance, or None (no penalty)."""
    return None if identifier is None else REGULARIZERS.get(identifier)


def serialize(regularizer):
    return REGULARIZERS.serialize(regularizer)


def deserialize(config):
    return REGULARIZERS.deserialize(config)
