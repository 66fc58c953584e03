"""Tabular preprocessing: learned on training rows, applied to new rows, stored as plain JSON."""

import json
import subprocess
import sys
import warnings

import numpy
import pandas
import pytest

import xpann
from xpann import preprocessing
from xpann.preprocessing import _cells, _columns
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
    pre = TabularPreprocessor(missing="fill", scaling="standard").fit(frame, ["age"])
    x = pre.transform(frame)
    assert x.dtype == numpy.float32 and x.shape == (6, 1)
    filled = numpy.array([20, 30, 40, 50, 40, 60], dtype=float)  # median of the others is 40
    numpy.testing.assert_allclose(x[:, 0], (filled - filled.mean()) / filled.std(), rtol=1e-6)
    assert pre.missing == {"age": 1}
    assert pre.missing_counts(frame) == {"age": 1}


def test_text_columns_are_one_hot_with_the_most_frequent_value_for_missing(frame):
    pre = TabularPreprocessor(missing="fill").fit(frame, ["city"])
    assert pre.output_names == ["city=Lyon", "city=Nice", "city=Paris"]
    x = pre.transform(frame)
    numpy.testing.assert_array_equal(x[3], [1, 0, 0])  # missing -> "Lyon"
    numpy.testing.assert_array_equal(x.sum(axis=1), numpy.ones(6))
    assert pre.missing == {"city": 1}


def test_an_unseen_category_becomes_all_zeros_with_a_warning(frame):
    pre = TabularPreprocessor(missing="fill").fit(frame, ["city"])
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


def test_many_categories_become_codes_for_an_embedding_and_none_is_cut():
    letters = list("aaabbbccd")  # d is seen once: it shares the unknown code
    frame = pandas.DataFrame({"letter": letters + [None], "x": numpy.arange(10.0)})
    pre = TabularPreprocessor(one_hot_max=2, scaling="standard").fit(frame)
    assert pre.output_names == ["letter", "x"]
    spec = pre.columns[0]
    assert spec["kind"] == "coded" and spec["categories"] == ["a", "b", "c"] and spec["rare"] == 1
    assert pre.embeddings == [(0, 5, spec["width"])]
    codes = pre.transform(frame, warn_truncated=False)[:, 0]
    expected = [2, 2, 2, 3, 3, 3, 4, 4, 1, 0]  # 0 missing, 1 unknown, 2.. a, b, c
    assert codes.tolist() == expected
    with pytest.warns(PreprocessingWarning, match=r"1 row\(s\) hold categories not seen in training \(or seen "
                                                  r"only once\) \('z'\); they get the unknown category's code"):
        assert pre.transform(pandas.DataFrame({"letter": ["z"], "x": [0.0]}))[0, 0] == 1
    again = TabularPreprocessor.from_config(json.loads(json.dumps(pre.to_config())))
    assert pre.to_config()["version"] == 3
    assert numpy.array_equal(again.transform(frame, warn_truncated=False), pre.transform(frame, warn_truncated=False))


def test_few_categories_stay_one_hot_and_a_pandas_category_column_is_categorical():
    frame = pandas.DataFrame({"grade": pandas.Categorical([1, 2, 3, 1, 2, 3]), "x": numpy.arange(6.0)})
    pre = TabularPreprocessor().fit(frame)
    assert pre.output_names == ["grade=1", "grade=2", "grade=3", "x"]
    assert pre.transform(frame)[:3, :3].tolist() == numpy.eye(3).tolist()


def test_embedding_width_grows_slowly_with_the_codes_up_to_4():
    from xpann.preprocessing._features import embedding_width

    assert [embedding_width(n) for n in (2, 3, 10, 30_002)] == [2, 3, 4, 4]  # round(1.6 n^0.56), at most 4


def test_text_in_a_numeric_column_names_the_column_and_the_value(frame):
    pre = TabularPreprocessor().fit(frame, ["age"])
    bad = pandas.DataFrame({"age": ["31", "old", "older"]}, index=pandas.RangeIndex(2, 5, name="line"))
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
    newer = preprocessing._config.CONFIG_VERSION + 1
    with pytest.raises(ValueError, match=f"version {newer}.*Upgrade xpann"):
        TabularPreprocessor.from_config({**config, "version": newer})
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


# ----- ID columns ---------------------------------------------------------------------------


def lines(n):
    return pandas.RangeIndex(2, n + 2, name="line")


def test_a_whole_number_feature_is_not_an_id():
    rng = numpy.random.default_rng(0)
    n = 450
    frame = pandas.DataFrame({
        "sqft": rng.permutation(numpy.arange(1000, 1600))[:n],  # 450 distinct whole numbers in 1000-1599
        "id": numpy.arange(1000, 1000 + n),                     # 1000, 1001, ... in file order
        "row_id": rng.permutation(n) + 1,                       # a shuffle of 1..n
        "zip": numpy.arange(n) + 3000,                          # consecutive, but not named like an ID
        "order_id": numpy.arange(n) * 7,                        # named like one, but neither rule holds...
        "code": [f"c{i}" for i in range(n)],                    # text, all different
    }, index=lines(n))
    frame["order_id"] = rng.permutation(frame["order_id"].to_numpy())  # ...once shuffled
    found = preprocessing.id_columns(frame)
    assert set(found) == {"id", "row_id", "code"}
    assert "whole numbers 1000 to 1449, increasing" in found["id"]
    assert "each number once" in found["row_id"]
    pre = TabularPreprocessor().fit(frame)
    assert pre.feature_columns == ["sqft", "zip", "order_id"]


@pytest.mark.parametrize("name, expected", [
    ("id", True), ("ID", True), ("customer_id", True), ("customerId", True), ("Unnamed: 0", True), ("", True),
    ("index", True), ("row", True), ("row number", True), ("key", True), ("uuid", True),
    ("paid", False), ("valid", False), ("grid", False), ("sqft", False), ("zip", False), ("identity", False),
])
def test_id_like_names(name, expected):
    assert _columns._id_like_name(name) is expected


def test_drop_and_keep_override_the_automatic_choices():
    n = 20
    frame = pandas.DataFrame({"id": numpy.arange(n), "x": numpy.linspace(0, 1, n), "z": numpy.arange(n) % 3})
    kept = TabularPreprocessor().fit(frame, keep=["id"], drop=["z"])
    assert kept.feature_columns == ["id", "x"] and kept.dropped == {"z": "dropped on request"}
    found_elsewhere = TabularPreprocessor().fit(frame.iloc[::2], ids={"x": "an ID found on all the rows"})
    assert "x" in found_elsewhere.dropped and found_elsewhere.feature_columns == ["id", "z"]
    with pytest.raises(ValueError, match="Cannot drop column 'nope'"):
        TabularPreprocessor().fit(frame, drop=["nope"])
    with pytest.raises(ValueError, match="both to drop and to keep"):
        TabularPreprocessor().fit(frame, drop=["x"], keep=["x"])


# ----- numbers and dates written as text ------------------------------------------------------


def test_a_few_text_cells_in_a_number_column_are_missing_with_a_warning():
    values = [str(v) for v in range(1, 40)] + ["unknown"]
    frame = pandas.DataFrame({"area": values}, index=lines(40), dtype=object)
    with pytest.warns(PreprocessingWarning, match=r"'area' holds numbers except 'unknown' \(1 cell\(s\), first "
                                                  r"on line 41\); read as missing"):
        pre = TabularPreprocessor().fit(frame)
    assert pre.columns[0]["kind"] == "numeric" and pre.columns[0]["fill"] == 20.0
    many = pandas.DataFrame({"area": values[:30] + ["unknown", "n/a"] * 5}, index=lines(40), dtype=object)
    assert TabularPreprocessor().fit(many).columns[0]["kind"] == "coded"  # 25% text: a text column (32 categories)


def test_thousands_separators_and_none_words():
    frame = pandas.DataFrame({"area": ["1,699.0", "1,099.5", "87", "-2,000", None],
                              "heating": ["None", "gas", "NA", "null", "gas"]}, dtype=object)
    pre = TabularPreprocessor(missing="fill").fit(frame)
    assert pre.columns[0]["kind"] == "numeric" and pre.columns[0]["fill"] == pytest.approx((87 + 1099.5) / 2)
    assert pre.output_names[1:] == ["heating=NA", "heating=None", "heating=gas", "heating=null"]
    values, bad = _cells._parse_numbers(pandas.Series(["1,234", "12,34", "1,234,567.5"]))
    numpy.testing.assert_array_equal(bad, [False, True, False])
    assert values[0] == 1234 and values[2] == 1234567.5


def test_dates_become_standardised_days_and_travel_in_the_config():
    frame = pandas.DataFrame({"built": ["1970-01-11", "1970-01-21", "1970-01-31 12:00", "", "1970-01-21T00:00"],
                              "x": [1.0, 2.0, 3.0, 4.0, 5.0]}, dtype=object).replace("", None)
    pre = TabularPreprocessor(missing="fill", scaling="standard").fit(frame)
    spec = pre.columns[0]
    assert spec["kind"] == "date" and spec["fill"] == 20.0  # the median: 1970-01-21 is day 20
    config = json.loads(json.dumps(pre.to_config()))
    assert config["version"] == 2
    again = TabularPreprocessor.from_config(config)
    x = again.transform(pandas.DataFrame({"built": ["1970-01-21"], "x": [1.0]}))
    assert x[0, 0] == pytest.approx((20 - spec["mean"]) / spec["scale"])
    assert TabularPreprocessor(scaling="standard").fit(frame[["x"]]).to_config()["version"] == 1  # older xpann reads it
    with pytest.raises(ValueError, match=r"'built' should hold dates \(YYYY-MM-DD\) but holds 'soon'"):
        again.transform(pandas.DataFrame({"built": ["soon", "later", "1970-01-02"], "x": [1.0] * 3}))


def test_values_too_large_for_float32_name_the_column_and_line():
    frame = pandas.DataFrame({"area": ["1.5", "2", "1e300"]}, index=lines(3), dtype=object)
    with pytest.raises(ValueError, match=r"Value 1e300 in column 'area' \(line 4\) is too large for float32"):
        TabularPreprocessor().fit(frame)
    pre = TabularPreprocessor().fit(frame.iloc[:2])
    with pytest.raises(ValueError, match=r"Value 1e300 in column 'area' \(line 4\)"):
        pre.transform(frame)
    with pytest.raises(ValueError, match=r"Value 1e300 in column 'price' \(line 4\)"):
        TargetEncoder("regression", name="price").fit(frame["area"])


# ----- targets written as text ----------------------------------------------------------------


def test_labels_come_back_exactly_as_written():
    encoder = TargetEncoder("classification", name="y").fit(pandas.Series(["2.0", "1.0", "10.0", "9.0", "1.0"]))
    assert encoder.classes == ["1.0", "2.0", "9.0", "10.0"]  # numbers by value, as written
    numpy.testing.assert_array_equal(encoder.transform(pandas.Series(["1", "10.0"])), [0, 3])
    again = TargetEncoder.from_config(json.loads(json.dumps(encoder.to_config())))
    assert list(again.decode(numpy.eye(4))) == ["1.0", "2.0", "9.0", "10.0"]
    flags = TargetEncoder("classification").fit(pandas.Series(["true", "false", "true"]))
    assert flags.classes == ["false", "true"]


def test_text_targets_choose_their_task():
    assert infer_task(pandas.Series(["1", "2", "1"], name="y"))[0] == "classification"
    assert infer_task(pandas.Series(["0.5", "1.25", "3"], name="y"))[0] == "regression"
    assert infer_task(pandas.Series(["true", "false"], name="y")) == ("classification", "target 'y' is true/false")
    prices = pandas.Series([str(1000 + 17 * i) for i in range(40)] + ["unknown"], name="price", index=lines(41))
    with pytest.raises(ValueError, match=r"'price' is numeric except 'unknown' on line 42"):
        infer_task(prices)
    with pytest.raises(ValueError, match=r"'price' is numeric except 'unknown' on line 42"):
        TargetEncoder("regression", name="price").fit(prices)


def test_a_regression_of_true_false_names_the_value_plainly():
    with pytest.raises(ValueError, match=r"'y' holds true/false values \(True, row 0\)") as raised:
        TargetEncoder("regression", name="y").fit(pandas.Series([True, False]))
    assert "np." not in str(raised.value)


def test_a_classification_target_needs_repeated_labels():
    numbers = pandas.Series([str(100 + i) for i in range(30)], name="price")
    with pytest.raises(ValueError, match="30 distinct values in 30 rows.*choose the regression task"):
        preprocessing.check_classification_target(numbers)
    money = pandas.Series([f"${100 + i},000" for i in range(30)], name="price", index=lines(30))
    with pytest.raises(ValueError, match=r"text such as '\$100,000' \(line 2\).*currency sign"):
        preprocessing.check_classification_target(money)
    preprocessing.check_classification_target(pandas.Series(["a", "b"] * 15, name="y"))


def test_unknown_labels_are_counted_with_their_lines():
    encoder = TargetEncoder("classification", name="band").fit(pandas.Series(["low", "high"]))
    truth = pandas.Series(["low", "luxury", "high", "luxury"], index=lines(4))
    with pytest.raises(ValueError, match=r"'luxury' in 2 of 4 rows \(lines 3, 5\)"):
        encoder.transform(truth)


def test_a_split_of_single_row_classes_names_the_cause():
    with pytest.raises(ValueError, match="each of the 2 classes has a single row"):
        split_rows(2, 0.5, seed=0, labels=["x", "y"])


def test_true_false_categories_match_in_any_case():
    pre = TabularPreprocessor().fit(pandas.DataFrame({"garage": ["true", "false", "TRUE"]}, dtype=object))
    assert pre.output_names == ["garage=False", "garage=True"]
    booleans = pandas.DataFrame({"garage": [True, False]})  # as an older pandas-typed reading had them
    numpy.testing.assert_array_equal(pre.transform(booleans), [[0, 1], [1, 0]])



def test_gaps_in_training_get_a_missing_category_or_indicator_by_default(frame):
    pre = TabularPreprocessor().fit(frame, ["age", "city"])
    assert pre.output_names == ["age", "age (missing)", "city=Lyon", "city=Nice", "city=Paris", "city=(missing)"]
    x = pre.transform(frame)
    gaps_age, gaps_city = frame["age"].isna().to_numpy(), frame["city"].isna().to_numpy()
    assert x[:, 1].tolist() == gaps_age.astype(float).tolist()
    assert x[:, 5].tolist() == gaps_city.astype(float).tolist()
    assert not x[gaps_city, 2:5].any()  # a gap is not the most frequent city
    filled = TabularPreprocessor(missing="fill").fit(frame, ["age", "city"]).transform(frame)
    numpy.testing.assert_array_equal(x[:, [0, 2, 3, 4]][~gaps_city], filled[~gaps_city])
    again = TabularPreprocessor.from_config(json.loads(json.dumps(pre.to_config())))
    assert pre.to_config()["version"] == 5  # smooth clipping (the default) is newer than missing indicators
    assert TabularPreprocessor(scaling="standard").fit(frame, ["age", "city"]).to_config()["version"] == 4
    numpy.testing.assert_array_equal(again.transform(frame), x)
    with pytest.raises(ValueError, match="missing must be one of indicate, fill"):
        TabularPreprocessor(missing="drop")


def test_robust_scaling_centres_on_the_median_divides_by_the_iqr_and_clips_smoothly():
    values = numpy.array([1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 400.0, numpy.nan])
    frame = pandas.DataFrame({"x": values, "flag": [0.0] * 7 + [1.0, 0.0]})
    pre = TabularPreprocessor(scaling="robust").fit(frame)
    observed = values[~numpy.isnan(values)]
    median = numpy.median(observed)
    iqr = numpy.quantile(observed, 0.75) - numpy.quantile(observed, 0.25)
    x, flag = pre.columns
    assert (x["mean"], x["scale"], x["clip"]) == (median, iqr, 3.0)
    assert flag["scale"] == 0.5  # an IQR of 0: half the range
    new = pandas.DataFrame({"x": [median, median + iqr, 1e30, -1e30, numpy.nan], "flag": [0.0, 1.0, 0.0, 0.0, 1.0]})
    out = pre.transform(new)
    z = (numpy.array([median, median + iqr, 1e30, -1e30, median]) - median) / iqr
    numpy.testing.assert_allclose(out[:, 0], z / numpy.sqrt(1 + (z / 3) ** 2), rtol=1e-7)
    assert out[2, 0] == numpy.float32(3.0) and out[3, 0] == numpy.float32(-3.0)  # far values reach the bound
    numpy.testing.assert_array_equal(out[:, 1], [0.0, 0.0, 0.0, 0.0, 1.0])  # x's gap indicator
    again = roundtrip(pre)
    assert again.scaling == "robust" and pre.to_config()["version"] == 5
    numpy.testing.assert_array_equal(again.transform(new), out)


def test_standard_scaling_is_unchanged_and_a_bad_scaling_or_clip_is_refused():
    frame = pandas.DataFrame({"x": [1.0, 2.0, 4.0, 8.0]})
    pre = TabularPreprocessor(missing="fill", scaling="standard").fit(frame)
    assert "clip" not in pre.columns[0] and pre.to_config()["version"] == 1
    numpy.testing.assert_allclose(pre.transform(frame)[:, 0], (frame["x"] - 3.75) / frame["x"].std(ddof=0), rtol=1e-6)
    with pytest.raises(ValueError, match="scaling must be one of robust, standard, got 'minmax'"):
        TabularPreprocessor(scaling="minmax")
    config = TabularPreprocessor(scaling="robust").fit(frame).to_config()
    config["columns"][0]["clip"] = 0
    with pytest.raises(ValueError, match="damaged.*clip of column 'x' must be a number > 0"):
        TabularPreprocessor.from_config(config)
