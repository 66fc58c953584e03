"""The real data sets shipped as CSV files in ``data/``: one header row, features, then ``target``.

Classification files hold the class names in ``target``; ``load`` turns them into codes
0..k-1 in the order of ``target_names``. The files are read only when asked for.
"""

import csv
import dataclasses
import io
import pathlib
from importlib import resources

import numpy

TARGET_COLUMN = "target"


@dataclasses.dataclass(frozen=True)
class _Entry:
    task: str
    target_names: tuple | None
    description: str


_CATALOGUE = {
    "breast_cancer": _Entry(
        "classification", ("malignant", "benign"),
        "Breast Cancer Wisconsin (Diagnostic): 30 cell-nucleus measurements of 569 breast masses "
        "(Street, Wolberg and Mangasarian 1993; UCI repository, as bundled with scikit-learn).",
    ),
    "diabetes": _Entry(
        "regression", None,
        "Diabetes: age, sex, BMI, blood pressure and six serum measurements of 442 patients, "
        "target disease progression after one year (Efron, Hastie, Johnstone and Tibshirani 2004; "
        "as bundled with scikit-learn).",
    ),
    "iris": _Entry(
        "classification", ("setosa", "versicolor", "virginica"),
        "Iris: sepal and petal sizes of 150 iris flowers of three species "
        "(Fisher 1936; as bundled with scikit-learn).",
    ),
    "wine": _Entry(
        "classification", ("class_0", "class_1", "class_2"),
        "Wine: 13 chemical measurements of 178 wines from three cultivars "
        "(Forina et al.; UCI repository, as bundled with scikit-learn).",
    ),
}


@dataclasses.dataclass(frozen=True, repr=False)
class Dataset:
    """A loaded data set: ``x`` float64 (samples, features); ``y`` int64 class codes indexing
    ``target_names`` for classification, float64 values for regression (``target_names`` None)."""

    x: numpy.ndarray
    y: numpy.ndarray
    feature_names: list
    target_names: list | None
    task: str
    name: str
    description: str

    def __repr__(self):
        classes = "" if self.target_names is None else f", classes={self.target_names!r}"
        return f"Dataset(name={self.name!r}, task={self.task!r}, x.shape={self.x.shape}{classes})"


def names():
    """The names of the bundled data sets, sorted."""
    return sorted(_CATALOGUE)


def _entry(name):
    if name not in _CATALOGUE:
        raise ValueError(f"Unknown data set {name!r}; valid names are {', '.join(names())}.")
    return _CATALOGUE[name]


def _resource(name):
    _entry(name)
    return resources.files(__package__) / "data" / f"{name}.csv"


def csv_path(name):
    """The ``pathlib.Path`` of the bundled CSV file for ``name``."""
    return pathlib.Path(_resource(name))


def load(name):
    """The bundled data set ``name`` (one of ``names()``) as a ``Dataset``."""
    entry = _entry(name)
    text = _resource(name).read_text(encoding="utf-8")
    header, *rows = csv.reader(io.StringIO(text))
    if header[-1] != TARGET_COLUMN or any(len(row) != len(header) for row in rows):
        raise ValueError(f"The bundled file {name}.csv is damaged: expected {len(header)} columns "
                         f"on every row, the last named {TARGET_COLUMN!r}.")
    x = numpy.array([row[:-1] for row in rows], dtype=numpy.float64)
    labels = [row[-1] for row in rows]
    if entry.target_names is None:
        y = numpy.array(labels, dtype=numpy.float64)
        target_names = None
    else:
        codes = {label: code for code, label in enumerate(entry.target_names)}
        unknown = sorted(set(labels) - set(codes))
        if unknown:
            raise ValueError(f"The bundled file {name}.csv has unexpected classes {unknown}; "
                             f"expected {', '.join(entry.target_names)}.")
        y = numpy.array([codes[label] for label in labels], dtype=numpy.int64)
        target_names = list(entry.target_names)
    return Dataset(x=x, y=y, feature_names=header[:-1], target_names=target_names, task=entry.task,
                   name=name, description=entry.description)


def load_breast_cancer():
    """``load("breast_cancer")``: 569 x 30, classes malignant and benign."""
    return load("breast_cancer")


def load_diabetes():
    """``load("diabetes")``: 442 x 10, regression on the original (unscaled) measurements."""
    return load("diabetes")


def load_iris():
    """``load("iris")``: 150 x 4, classes setosa, versicolor and virginica."""
    return load("iris")


def load_wine():
    """``load("wine")``: 178 x 13, classes class_0, class_1 and class_2."""
    return load("wine")
