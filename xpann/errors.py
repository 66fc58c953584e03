"""Warnings and errors that users may want to catch by type."""

from .backend import BackendUnavailableError


class TrainingHealthWarning(UserWarning):
    """Training went wrong in a way a person should hear of: vanishing, exploding, dead or saturated."""


__all__ = ["BackendUnavailableError", "TrainingHealthWarning"]
