"""Tabular preprocessing learned on the training rows and stored beside the weights as plain JSON.

``TabularPreprocessor`` turns a pandas DataFrame into a float32 array. Each column becomes one
of three kinds:

* numbers (a numeric column, or text cells that read as numbers, ``1,699.0`` included):
  imputed with the training median, centred on it and divided by the interquartile range, then
  smoothly clipped to +-3 (``scaling="robust"``, the default; or standardised). A few cells that are not numbers (at
  most 5% of the filled ones) are read as missing, with a ``PreprocessingWarning`` naming them;
* dates (``YYYY-MM-DD``, with or without a time): days since 1970-01-01, then as numbers;
* text (and true/false, and pandas categories): with at most 16 categories, imputed with the most
  frequent one and one-hot encoded (a category unseen in training is all zeros); with more, one
  integer code per row for a ``CategoryEmbedding`` (0 missing, 1 unknown or seen once, 2.. the
  categories), no category cut.

Constant and all-missing columns are dropped and reported, and so are ID columns: text with a
different value in every row, or whole numbers numbered 1, 2, 3, ... under an ID-like name.
``TargetEncoder`` maps class labels (kept exactly as written) to codes 0..k-1 and back, or
standardises a regression target and puts predictions back in its units. ``attach``/
``from_model`` keep both in ``model.metadata``, so a file written by ``model.save`` holds
everything ``predict`` needs, and no pickle. ``split_rows`` is the seeded, stratified split.

This is host-side code: it works on pandas and NumPy objects, never on device arrays. pandas is
imported only by the functions that need it, so ``import xpann`` stays fast.
"""

from ._columns import id_columns
from ._features import TabularPreprocessor
from ._messages import PreprocessingWarning
from ._split import split_rows
from ._stored import attach, from_model
from ._target import TargetEncoder, check_classification_target, infer_task

__all__ = [
    "PreprocessingWarning",
    "TabularPreprocessor",
    "TargetEncoder",
    "attach",
    "check_classification_target",
    "from_model",
    "id_columns",
    "infer_task",
    "split_rows",
]
