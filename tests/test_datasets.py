"""Bundled data sets (shapes, labels, files) and the seeded synthetic generators."""

import csv
import dataclasses
import pathlib
import subprocess
import sys

import numpy
import pytest

import xpann
from xpann import datasets

EXPECTED = {
    "iris": ((150, 4), ["setosa", "versicolor", "virginica"], [50, 50, 50]),
    "wine": ((178, 13), ["class_0", "class_1", "class_2"], [59, 71, 48]),
    "breast_cancer": ((569, 30), ["malignant", "benign"], [212, 357]),
    "diabetes": ((442, 10), None, None),
}
LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
}


def test_names_and_target_column():
    assert datasets.names() == ["breast_cancer", "diabetes", "iris", "wine"]
    assert datasets.TARGET_COLUMN == "target"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_shapes_labels_and_counts(name):
    shape, target_names, counts = EXPECTED[name]
    data = datasets.load(name)
    assert isinstance(data, datasets.Dataset)
    assert data.name == name
    assert data.x.shape == shape and data.x.dtype == numpy.float64
    assert data.y.shape == (shape[0],)
    assert len(data.feature_names) == shape[1]
    assert all(isinstance(feature, str) and feature for feature in data.feature_names)
    assert numpy.isfinite(data.x).all()
    assert name.split("_")[0] in data.description.lower()
    assert data.target_names == target_names
    if target_names is None:
        assert data.task == "regression"
        assert data.y.dtype == numpy.float64
    else:
        assert data.task == "classification"
        assert data.y.dtype == numpy.int64
        assert numpy.bincount(data.y).tolist() == counts


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_loaders_match_load(name):
    direct, named = datasets.load(name), LOADERS[name]()
    numpy.testing.assert_array_equal(direct.x, named.x)
    numpy.testing.assert_array_equal(direct.y, named.y)
    assert direct.feature_names == named.feature_names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_csv_file_holds_the_same_data_with_class_names(name):
    path = datasets.csv_path(name)
    assert isinstance(path, pathlib.Path) and path.is_file()
    with path.open(newline="", encoding="utf-8") as stream:
        header, *rows = list(csv.reader(stream))
    data = datasets.load(name)
    assert header[-1] == datasets.TARGET_COLUMN
    assert header[:-1] == data.feature_names
    assert all(feature == feature.lower() and " " not in feature for feature in header)
    labels = [row[-1] for row in rows]
    if data.target_names is None:
        numpy.testing.assert_array_equal(numpy.array(labels, dtype=float), data.y)
    else:
        assert labels == [data.target_names[code] for code in data.y]


def test_first_rows_are_the_published_values():
    iris = datasets.load_iris()
    numpy.testing.assert_array_equal(iris.x[0], [5.1, 3.5, 1.4, 0.2])
    assert iris.target_names[iris.y[0]] == "setosa"
    cancer = datasets.load_breast_cancer()
    assert cancer.x[0, 0] == 17.99 and cancer.target_names[cancer.y[0]] == "malignant"


def test_diabetes_is_on_the_original_scale():
    data = datasets.load_diabetes()
    assert data.feature_names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert set(numpy.unique(data.x[:, 1])) == {1.0, 2.0}
    assert data.x[:, 0].min() >= 19 and data.x[:, 0].max() <= 79
    assert data.y.min() == 25 and data.y.max() == 346


def test_dataset_is_frozen_and_repr_is_short():
    data = datasets.load_iris()
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.x = None
    assert repr(data) == ("Dataset(name='iris', task='classification', x.shape=(150, 4), "
                          "classes=['setosa', 'versicolor', 'virginica'])")


@pytest.mark.parametrize("function", [datasets.load, datasets.csv_path])
def test_unknown_name_lists_the_valid_ones(function):
    valid = "breast_cancer, diabetes, iris, wine"
    with pytest.raises(ValueError, match=f"Unknown data set 'mnist'; valid names are {valid}"):
        function("mnist")


def test_importing_xpann_does_not_import_pandas():
    code = "import sys, xpann; sys.exit('pandas' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_iris_is_learned_well_above_chance():
    data = datasets.load_iris()
    x = (data.x - data.x.mean(axis=0)) / data.x.std(axis=0)
    model = xpann.Sequential([xpann.layers.Dense(16, activation="relu"),
                              xpann.layers.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer=xpann.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, data.y, epochs=100, batch_size=32, verbose=0)
    assert model.evaluate(x, data.y)["accuracy"] > 0.9


# ----- synthetic generators -----------------------------------------------------------------


@pytest.mark.parametrize("make", [datasets.make_classification, datasets.make_regression])
def test_generators_are_deterministic_per_seed(make):
    first, again, other = make(n_samples=200, seed=3), make(n_samples=200, seed=3), make(n_samples=200, seed=4)
    for a, b in zip(first, again):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(first[0], other[0])


def test_make_classification_shapes_dtypes_and_balance():
    x, y = datasets.make_classification()
    assert x.shape == (1000, 20) and x.dtype == numpy.float32
    assert y.shape == (1000,) and y.dtype == numpy.int64
    assert numpy.bincount(y).tolist() == [500, 500]
    x, y = datasets.make_classification(n_samples=10, n_features=3, n_informative=2, n_classes=4, dtype="float64")
    assert x.shape == (10, 3) and x.dtype == numpy.float64
    assert numpy.bincount(y).tolist() == [3, 3, 2, 2]


def test_make_classification_signal_lies_in_the_informative_columns():
    x, y = datasets.make_classification(n_samples=2000, n_features=6, n_informative=2, class_sep=2.0, seed=1)
    gap = numpy.abs(x[y == 0].mean(axis=0) - x[y == 1].mean(axis=0))
    assert gap[:2].max() > 1.0
    assert gap[2:].max() < 0.2


def test_make_classification_noise_relabels_that_fraction():
    x, clean = datasets.make_classification(n_samples=4000, n_classes=4, seed=2)
    _, noisy = datasets.make_classification(n_samples=4000, n_classes=4, noise=0.4, seed=2)
    changed = numpy.mean(clean != noisy)
    assert 0.4 * 0.75 - 0.05 < changed < 0.4 * 0.75 + 0.05  # a redrawn label keeps its class 1/4 of the time
    numpy.testing.assert_array_equal(x, datasets.make_classification(n_samples=4000, n_classes=4, noise=0.4, seed=2)[0])


def test_make_regression_shapes_dtypes_and_signal():
    x, y = datasets.make_regression()
    assert x.shape == (1000, 20) and x.dtype == numpy.float32
    assert y.shape == (1000,) and y.dtype == numpy.float32
    x, y = datasets.make_regression(n_samples=2000, n_features=8, n_informative=3, noise=0.1, dtype="float64", seed=5)
    assert x.dtype == y.dtype == numpy.float64
    design = numpy.column_stack([x, numpy.ones(len(x))])
    coefficients, *_ = numpy.linalg.lstsq(design, y, rcond=None)
    r2 = 1 - numpy.var(y - design @ coefficients) / numpy.var(y)
    assert r2 > 0.8
    assert numpy.abs(coefficients[3:8]).max() < 0.05


@pytest.mark.parametrize("arguments, message", [
    ({"n_samples": 0}, "n_samples must be a whole number >= 1"),
    ({"n_features": 2.5}, "n_features must be a whole number >= 1"),
    ({"n_features": 4, "n_informative": 5}, r"n_informative \(5\) must not exceed n_features \(4\)"),
    ({"n_informative": 0}, "n_informative must be a whole number >= 1"),
    ({"seed": -1}, "seed must be a whole number >= 0 or None"),
    ({"seed": 1.5}, "seed must be a whole number >= 0 or None"),
    ({"dtype": "int32"}, "Unknown dtype 'int32'; valid dtypes are float32, float64"),
])
@pytest.mark.parametrize("make", [datasets.make_classification, datasets.make_regression])
def test_generators_reject_bad_arguments(make, arguments, message):
    with pytest.raises(ValueError, match=message):
        make(**arguments)


@pytest.mark.parametrize("arguments, message", [
    ({"n_classes": 1}, "n_classes must be a whole number >= 2"),
    ({"n_samples": 3, "n_classes": 4}, r"n_classes \(4\) must not exceed n_samples \(3\)"),
    ({"n_features": 2, "n_classes": 5}, r"n_classes \(5\) must be at most 2\*\*n_informative \(2\)"),
    ({"class_sep": -1.0}, "class_sep must be a finite number >= 0"),
    ({"noise": 1.5}, r"noise must be in \[0, 1\]"),
])
def test_make_classification_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        datasets.make_classification(**arguments)


def test_make_regression_rejects_negative_noise():
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        datasets.make_regression(noise=-0.1)
