"""Tables in Python: ``TabularModel(target=...).fit(frame_or_path)`` runs the pipeline ``xpann train``
runs (preprocessing, task, split, network, best epoch) and predicts in the user's terms;
``load(path)`` reads a saved one, ``xpann train``'s files included. ``read_table`` is the CSV
reader both use, ``require_column`` the check that names the nearest column. pandas is imported
when a table is read, not before."""

from ._csv import read_table, require_column
from ._model import TabularModel, load

__all__ = ["TabularModel", "load", "read_table", "require_column"]
