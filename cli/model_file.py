"""Loading a model written by ``xpann train``: the network and the preprocessing stored beside it."""

import os

import xpann
from xpann import preprocessing

from . import report


class TabularModel:
    """A loaded model with its ``features`` (TabularPreprocessor), ``target`` (TargetEncoder)
    and the facts stored at training (``stored``)."""

    def __init__(self, path, backend=None):
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path} is a folder, not a model file.")
        if not os.path.exists(self.path):
            raise ValueError(f"No model file at {self.path}.")
        self.model = xpann.load_model(self.path, backend=backend)
        try:
            self.features, self.target, self.stored = preprocessing.from_model(self.model)
        except ValueError as error:
            raise ValueError(f"{self.path}: {error}") from None
        if self.model.input_dim != len(self.features.output_names):
            raise ValueError(f"{self.path} is damaged: the network takes {self.model.input_dim} inputs but the "
                             f"stored preprocessing makes {len(self.features.output_names)}.")
        if self.model.output_dim != self.target.n_outputs:
            raise ValueError(f"{self.path} is damaged: the network has {self.model.output_dim} outputs but the "
                             f"stored target encoding needs {self.target.n_outputs}.")

    @property
    def task(self):
        return self.target.task

    def describe(self):
        if self.task == "classification":
            return f"classification of {self.target.name!r} into {len(self.target.classes)} classes"
        return f"regression of {self.target.name!r}"

    def transform(self, frame, path):
        """The network inputs for the rows of ``frame`` (read from ``path``); a missing column or a
        bad value is a ValueError naming the file, and unseen categories are warned about."""
        try:
            with report.warnings_as_messages():
                return self.features.transform(frame)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
