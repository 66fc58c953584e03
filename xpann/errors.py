"""Warnings and errors that users may want to catch by type."""

from .backend import BackendUnavailableError


class TrainingHealthWarning(UserWarning):
    """Training went wrong in a way a person should hear of: vanishing, exploding, dead or saturated."""


class TrainingDivergedError(FloatingPointError):
    """Training stopped on a NaN or infinite loss: the weights blew up, and nothing was kept."""


__all__ = ["BackendUnavailableError", "TrainingDivergedError", "TrainingHealthWarning"]
