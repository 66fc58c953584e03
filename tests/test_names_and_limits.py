"""Layer names that collide, numbers that float32 cannot hold, weights that overflow, NumPy
integers, and an evaluation report over thousands of classes."""

import json

import numpy
import pandas
import pytest

import xpann

from cli_runner import run


def test_automatic_names_never_collide_with_given_ones_and_the_file_loads(tmp_path):
    model = xpann.Sequential([xpann.layers.Dense(4, name="dense_2"), xpann.layers.Dense(3)], input_dim=2, seed=0)
    assert model.layer_names() == ["dense_2", "dense_2_2"]
    model.save(tmp_path / "m.npz")
    assert list(xpann.load_model(tmp_path / "m.npz").named_weights()) == list(model.named_weights())


@pytest.mark.parametrize("name", ["", " padded", "a/b", "tab\there", "x" * 129])
def test_empty_unprintable_slashed_or_absurd_names_are_refused(name):
    with pytest.raises(ValueError, match="A layer name must be 1 to 128 printable characters"):
        xpann.layers.Dense(3, name=name)


def test_two_layers_given_one_name_are_refused_when_built():
    with pytest.raises(ValueError, match="Layer names must differ: 'a' is given to more than one layer"):
        xpann.Sequential([xpann.layers.Dense(4, name="a"), xpann.layers.Dense(3, name="a")], input_dim=2)


@pytest.mark.parametrize("layer", [xpann.layers.BatchNormalization, xpann.layers.LayerNormalization])
def test_an_epsilon_that_is_zero_in_float32_is_refused(layer):
    with pytest.raises(ValueError, match="epsilon=1e-50 is 0 in float32"):
        xpann.Sequential([xpann.layers.Dense(3), layer(epsilon=1e-50)], input_dim=2)
    xpann.Sequential([xpann.layers.Dense(3), layer(epsilon=1e-50)], input_dim=2, dtype="float64")


def test_codes_beyond_float32s_whole_numbers_are_refused():
    with pytest.raises(ValueError, match="input_dims up to 16,777,216 in float32"):
        xpann.Sequential([xpann.layers.CategoryEmbedding([0], [2**24 + 1], [1])], input_dim=2)


def test_numpy_integers_are_taken_where_whole_numbers_are():
    model = xpann.Sequential([xpann.layers.CategoryEmbedding([0], [numpy.int64(5)], [numpy.int32(2)]),
                              xpann.layers.Dense(numpy.int64(3))], input_dim=numpy.int64(2), seed=0)
    assert model.count_params() == 5 * 2 + (1 + 2) * 3 + 3


def test_an_evaluation_over_thousands_of_classes_stays_small(tmp_path):
    rng = numpy.random.default_rng(0)
    labels = [f"c{i}" for i in rng.integers(0, 3000, 6000)]
    frame = pandas.DataFrame({"x": rng.normal(size=6000), "label": labels})
    frame.to_csv(tmp_path / "many.csv", index=False)
    run("train", tmp_path / "many.csv", "--target", "label", "--hidden", "8", "--epochs", 1, "--val-split", 0,
        "--out", tmp_path / "m.npz")
    summary = json.loads(run("evaluate", tmp_path / "m.npz", tmp_path / "many.csv", "--json").stdout)
    matrix = summary["confusion_matrix"]
    assert len(matrix["labels"]) == 31 and matrix["labels"][-1] == "(other classes)"
    assert sum(map(sum, matrix["matrix"])) == 6000  # every row counted once
    assert len(summary["per_class"]) == 51 and summary["per_class"][-1]["class"].startswith("(other classes: ")
    assert sum(c["support"] for c in summary["per_class"]) == 6000
    supports = [c["support"] for c in summary["per_class"][:-1]]
    assert supports == sorted(supports, reverse=True)  # the most frequent classes are the ones listed
    assert pandas.Series(labels).value_counts().iloc[0] == supports[0]
