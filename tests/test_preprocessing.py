"""Tabular preprocessing: learned on training rows, applied to new rows, stored as plain JSON."""

import json
import subprocess
import sys
import warnings

import numpy
import pandas
import pytest

import xpann
from xpann.preprocessing import (
    PreprocessingWarning,
    TabularPreprocessor,
    TargetEncoder,
    attach,
    from_model,
    infer_task,
    split_rows,
)


@pytest.fixture
def frame():
    return pandas.DataFrame({
        "age": [20.0, 30.0, numpy.nan, 50.0, 40.0, 60.0],
        "city": ["Lyon", "Paris", "Lyon", None, "Nice", "Lyon"],
        "country": ["FR"] * 6,
        "empty": [numpy.nan] * 6,
        "member": [True, False, True, True, False, True],
    })


def roundtrip(preprocessor):
    """The preprocessor rebuilt from its config after a trip through JSON text."""
    return TabularPreprocessor.from_config(json.loads(json.dumps(preprocessor.to_config())))


def test_numeric_columns_are_imputed_with_the_median_and_standardised(frame):
    pre = TabularPreprocessor().fit(frame, ["age"])
    x = pre.transform(frame)
    assert x.dtype == numpy.float32 and x.shape == (6, 1)
    filled = numpy.array([20, 30, 40, 50, 40, 60], dtype=float)  # median of the others is 40
    numpy.testing.assert_allclose(x[:, 0], (filled - filled.mean()) / filled.std(), rtol=1e-6)
    assert pre.missing == {"age": 1}
    assert pre.missing_counts(frame) == {"age": 1}


def test_text_columns_are_one_hot_with_the_most_frequent_value_for_missing(frame):
    pre = TabularPreprocessor().fit(frame, ["city"])
    assert pre.output_names == ["city=Lyon", "city=Nice", "city=Paris"]
    x = pre.transform(frame)
    numpy.testing.assert_array_equal(x[3], [1, 0, 0])  # missing -> "Lyon"
    numpy.testing.assert_array_equal(x.sum(axis=1), numpy.ones(6))
    assert pre.missing == {"city": 1}


def test_an_unseen_category_becomes_all_zeros_with_a_warning(frame):
    pre = TabularPreprocessor().fit(frame, ["city"])
    new = pandas.DataFrame({"city": ["Paris", "Marseille", "Marseille"]})
    with pytest.warns(PreprocessingWarning, match="'city'.*2 row.*'Marseille'"):
        x = pre.transform(new)
    numpy.testing.assert_array_equal(x, [[0, 0, 1], [0, 0, 0], [0, 0, 0]])


def test_booleans_are_categories_and_match_their_text_later(frame):
    pre = TabularPreprocessor().fit(frame, ["member"])
    assert pre.output_names == ["member=False", "member=True"]
    later = pandas.DataFrame({"member": ["True", None]}, dtype=object)  # read back with a gap
    numpy.testing.assert_array_equal(pre.transform(later), [[0, 1], [0, 1]])


def test_numbers_read_as_text_or_floats_match_their_categories():
    pre = TabularPreprocessor().fit(pandas.DataFrame({"code": ["1", "2", "x", "1"]}))
    later = pandas.DataFrame({"code": [2.0, 1.0]})
    numpy.testing.assert_array_equal(pre.transform(later), [[0, 1, 0], [1, 0, 0]])


def test_constant_empty_and_id_like_columns_are_dropped_and_reported():
    n = 12
    frame = pandas.DataFrame({
        "row": numpy.arange(100, 100 + n),
        "name": [f"person {i}" for i in range(n)],
        "constant": [7] * n,
        "empty": [numpy.nan] * n,
        "x": numpy.linspace(0, 1, n) ** 2,
    })
    pre = TabularPreprocessor().fit(frame)
    assert pre.feature_columns == ["x"]
    assert set(pre.dropped) == {"row", "name", "constant", "empty"}
    assert "ID" in pre.dropped["row"] and "ID" in pre.dropped["name"]
    assert "constant" in pre.dropped["constant"] and "missing" in pre.dropped["empty"]
    # the transform does not need the dropped columns
    assert pre.transform(frame[["x"]]).shape == (n, 1)


def test_spread_out_distinct_integers_are_a_feature_not_an_id():
    frame = pandas.DataFrame({"price": [100 * i * i + 3 for i in range(1, 15)]})
    assert TabularPreprocessor().fit(frame).feature_columns == ["price"]


def test_no_usable_column_is_an_error():
    with pytest.raises(ValueError, match="No usable feature columns.*'c': constant"):
        TabularPreprocessor().fit(pandas.DataFrame({"c": [1, 1, 1]}))


def test_only_the_most_frequent_categories_are_kept():
    frame = pandas.DataFrame({"letter": list("aaabbbccd" * 3)})
    pre = TabularPreprocessor(max_categories=2).fit(frame)
    assert pre.output_names == ["letter=a", "letter=b"]
    assert pre.truncated == {"letter": 4}


def test_text_in_a_numeric_column_names_the_column_and_the_value(frame):
    pre = TabularPreprocessor().fit(frame, ["age"])
    bad = pandas.DataFrame({"age": ["31", "old"]}, index=pandas.RangeIndex(2, 4, name="line"))
    with pytest.raises(ValueError, match=r"Column 'age' should hold numbers but holds 'old' \(line 3\)"):
        pre.transform(bad)


def test_infinite_values_are_an_error():
    with pytest.raises(ValueError, match="'v' holds an infinite value"):
        TabularPreprocessor().fit(pandas.DataFrame({"v": [1.0, numpy.inf, 2.0]}))


def test_a_missing_feature_column_is_named(frame):
    pre = TabularPreprocessor().fit(frame, ["age", "city"])
    with pytest.raises(ValueError, match="Missing feature column 'city'"):
        pre.transform(frame[["age"]])


def test_the_config_is_plain_json_and_transforms_alike(frame):
    pre = TabularPreprocessor().fit(frame.drop(columns=["empty"]))
    text = json.dumps(pre.to_config())  # raises on any numpy scalar or other non-JSON value
    assert "NaN" not in text
    again = roundtrip(pre)
    numpy.testing.assert_array_equal(again.transform(frame), pre.transform(frame))
    assert again.dropped == pre.dropped and again.missing == pre.missing


def test_a_newer_or_damaged_config_is_a_clear_error(frame):
    config = TabularPreprocessor().fit(frame, ["age"]).to_config()
    with pytest.raises(ValueError, match="version 2.*Upgrade xpann"):
        TabularPreprocessor.from_config({**config, "version": 2})
    with pytest.raises(ValueError, match="damaged"):
        TabularPreprocessor.from_config({"version": 1})


def test_transform_before_fit_is_an_error(frame):
    with pytest.raises(ValueError, match="not fitted"):
        TabularPreprocessor().transform(frame)


# ----- task and target ----------------------------------------------------------------------


@pytest.mark.parametrize("values, task", [
    (["a", "b", "a"], "classification"),
    ([True, False, True], "classification"),
    ([0, 1, 2, 1, 0], "classification"),
    ([1.0, 2.0, numpy.nan, 1.0], "classification"),   # whole numbers read as floats because of a gap
    ([0.5, 1.25, 3.0], "regression"),
    (list(range(50)), "regression"),
])
def test_infer_task(values, task):
    chosen, reason = infer_task(pandas.Series(values, name="y"))
    assert chosen == task
    assert "'y'" in reason


def test_classification_labels_are_encoded_and_decoded_to_their_names():
    encoder = TargetEncoder("classification", name="species").fit(pandas.Series(["b", "a", "c", "a"]))
    assert encoder.classes == ["a", "b", "c"] and encoder.n_outputs == 3
    numpy.testing.assert_array_equal(encoder.transform(pandas.Series(["c", "a"])), [2, 0])
    probabilities = numpy.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]])
    assert list(encoder.decode(probabilities)) == ["b", "a"]
    assert encoder.loss == "sparse_categorical_crossentropy" and encoder.output_activation == "softmax"


def test_integer_labels_stay_integers_through_json():
    encoder = TargetEncoder("classification").fit(pandas.Series([2, 0, 1, 2]))
    again = TargetEncoder.from_config(json.loads(json.dumps(encoder.to_config())))
    assert again.classes == [0, 1, 2]
    assert list(again.decode(numpy.eye(3))) == [0, 1, 2]
    numpy.testing.assert_array_equal(again.transform(pandas.Series([1.0, 2.0])), [1, 2])


def test_unknown_labels_and_single_classes_are_errors():
    encoder = TargetEncoder("classification", name="y").fit(pandas.Series(["a", "b"]))
    with pytest.raises(ValueError, match="never saw in training: 'z'"):
        encoder.transform(pandas.Series(["a", "z"]))
    with pytest.raises(ValueError, match="only one class"):
        TargetEncoder("classification", name="y").fit(pandas.Series(["a", "a"]))
    with pytest.raises(ValueError, match="empty cell"):
        encoder.transform(pandas.Series(["a", None]))


def test_a_regression_target_is_standardised_and_comes_back_in_its_units():
    values = pandas.Series([100.0, 150.0, 200.0, 250.0], name="price")
    encoder = TargetEncoder("regression", name="price").fit(values)
    scaled = encoder.transform(values)
    numpy.testing.assert_allclose([scaled.mean(), scaled.std()], [0, 1], atol=1e-6)
    numpy.testing.assert_allclose(encoder.decode(scaled[:, None]), values, rtol=1e-6)
    assert encoder.n_outputs == 1 and encoder.loss == "mean_squared_error"
    again = TargetEncoder.from_config(json.loads(json.dumps(encoder.to_config())))
    numpy.testing.assert_allclose(again.decode(scaled[:, None]), values, rtol=1e-6)


def test_a_text_regression_target_is_an_error():
    with pytest.raises(ValueError, match="'y' holds text .*'cat'"):
        TargetEncoder("regression", name="y").fit(pandas.Series(["cat", "dog"]))


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="Unknown task 'clustering'"):
        TargetEncoder("clustering")


# ----- splitting ----------------------------------------------------------------------------


def test_split_is_stratified_complete_and_seeded():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    train, validation = split_rows(100, 0.2, seed=3, labels=labels)
    assert sorted(numpy.concatenate([train, validation]).tolist()) == list(range(100))
    picked = [labels[i] for i in validation]
    assert (picked.count("a"), picked.count("b"), picked.count("c")) == (10, 6, 4)
    again = split_rows(100, 0.2, seed=3, labels=labels)
    numpy.testing.assert_array_equal(again[1], validation)
    assert not numpy.array_equal(split_rows(100, 0.2, seed=4, labels=labels)[1], validation)


def test_split_keeps_a_training_row_for_every_class():
    train, validation = split_rows(3, 0.5, seed=0, labels=["a", "b", "b"])
    assert {0} <= set(train.tolist()) and len(validation) == 1


def test_split_without_validation_or_with_too_few_rows():
    train, validation = split_rows(5, 0.0, seed=0)
    assert sorted(train.tolist()) == list(range(5)) and validation.size == 0
    with pytest.raises(ValueError, match="leaves no validation rows"):
        split_rows(2, 0.1, seed=0)


# ----- in the model file --------------------------------------------------------------------


def test_preprocessing_travels_in_the_model_file(tmp_path, frame):
    pre = TabularPreprocessor().fit(frame, ["age", "city"])
    encoder = TargetEncoder("classification", name="y").fit(pandas.Series(["no", "yes"] * 3))
    model = xpann.Sequential([xpann.layers.Dense(2, activation="softmax")],
                             input_dim=len(pre.output_names), seed=0)
    attach(model, pre, encoder, trained_on={"rows": 6})
    model.save(tmp_path / "m.npz")
    loaded_pre, loaded_encoder, stored = from_model(xpann.load_model(tmp_path / "m.npz"))
    numpy.testing.assert_array_equal(loaded_pre.transform(frame), pre.transform(frame))
    assert loaded_encoder.classes == ["no", "yes"] and stored["trained_on"] == {"rows": 6}


def test_a_model_without_preprocessing_is_a_clear_error():
    model = xpann.Sequential([xpann.layers.Dense(1)], input_dim=2)
    with pytest.raises(ValueError, match="no tabular preprocessing"):
        from_model(model)


def test_importing_the_module_does_not_import_pandas():
    code = "import sys, xpann.preprocessing; print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_transform_of_known_data_warns_about_nothing(frame):
    pre = TabularPreprocessor().fit(frame, ["age", "city", "member"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pre.transform(frame)
