"""The step plan: nodes over a model's flat buffers, the fusion rules, the training step."""

from ._buffers import ParameterBuffer, StateBuffer, StateSpec, TensorSpec
from ._node import Link, Node
from ._plan import FORTRAN_MAX_UNITS, StepPlan

__all__ = ["FORTRAN_MAX_UNITS", "Link", "Node", "ParameterBuffer", "StateBuffer", "StateSpec", "StepPlan",
           "TensorSpec"]
