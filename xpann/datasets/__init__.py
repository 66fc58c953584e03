"""Small real tabular data sets shipped with xpann, and seeded synthetic generators.

``load(name)`` reads a bundled CSV (see ``names()`` and ``data/SOURCES.md``);
``make_classification`` and ``make_regression`` draw reproducible data from a seed.
"""

from ._bundled import (
    TARGET_COLUMN,
    Dataset,
    csv_path,
    load,
    load_breast_cancer,
    load_diabetes,
    load_iris,
    load_wine,
    names,
)
from ._synthetic import make_classification, make_regression

__all__ = [
    "TARGET_COLUMN",
    "Dataset",
    "csv_path",
    "load",
    "load_breast_cancer",
    "load_diabetes",
    "load_iris",
    "load_wine",
    "make_classification",
    "make_regression",
    "names",
]
