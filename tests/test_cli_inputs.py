"""The command line on the CSV files people have: IDs and whole-number features, stray text in
number columns, thousands separators, None as a category, dates, huge values, labels written
as true/false or 1.0, semicolon- and tab-separated files."""

import json

import numpy
import pandas
import pytest
from click.testing import CliRunner

import xpann
from xpann_cli.main import cli

from cli_runner import fails, run


def houses(n=200, seed=0):
    """Listings whose price follows sqft, the date built and the neighbourhood."""
    rng = numpy.random.default_rng(seed)
    sqft = rng.permutation(numpy.arange(1000, 1600))[:n]
    built = pandas.Timestamp("1950-01-01") + pandas.to_timedelta(rng.integers(0, 25000, n), unit="D")
    hood = rng.choice(["Old Town", "Riverside", "Hillcrest, North"], n)
    price = 200 * sqft + 5 * (built - pandas.Timestamp("1950-01-01")).days + 40000 * (hood == "Old Town")
    return pandas.DataFrame({
        "listing_id": [f"L{100000 + i}" for i in range(n)],
        "id": numpy.arange(1, n + 1),
        "sqft": sqft,
        "neighbourhood": hood,
        "heating": rng.choice(["None", "gas", "NA", "electric"], n),
        "built": built.strftime("%Y-%m-%d"),
        "price": price + rng.normal(0, 5000, n).round(),
        "expensive": numpy.where(price > numpy.median(price), "true", "false"),
    })


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("houses")
    houses().to_csv(folder / "houses.csv", index=False)
    houses(60, seed=1).drop(columns=["price", "expensive"]).to_csv(folder / "new.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def price_model(folder):
    result = run("train", folder / "houses.csv", "--target", "price", "--drop", "expensive", "--epochs", 60,
                 "--lr", 0.01, "--out", folder / "price.npz")
    return folder / "price.npz", result.output


def test_whole_number_features_stay_and_only_real_ids_go(price_model):
    model, output = price_model
    assert "Dropped column 'id': looks like a row ID" in output and "--keep id uses it" in output
    assert "Dropped column 'listing_id': looks like an ID (text" in output
    assert "sqft" not in output.split("Split:")[0].replace("Dropped column 'expensive'", "")  # not dropped
    assert "Dropped column 'expensive': dropped on request" in output
    features = xpann.load_model(model).metadata["tabular"]["features"]
    assert [spec["name"] for spec in features["columns"]] == ["sqft", "neighbourhood", "heating", "built"]


def test_keep_and_drop_options(folder, tmp_path):
    kept = run("train", folder / "houses.csv", "--target", "price", "--keep", "id", "--drop", "sqft,heating",
               "--epochs", 1, "--out", tmp_path / "m.npz").output
    assert "Dropped column 'id'" not in kept and "Dropped column 'sqft': dropped on request" in kept
    assert "--drop: Column 'sqftt' is not in the data" in fails(
        "train", folder / "houses.csv", "--target", "price", "--drop", "sqftt", culprit="'sqftt'").error
    assert "'price' is the target column" in fails(
        "train", folder / "houses.csv", "--target", "price", "--drop", "price", culprit=("--drop", "'price'")).error
    assert "both --drop and --keep" in fails(
        "train", folder / "houses.csv", "--target", "price", "--drop", "id", "--keep", "id", culprit="'id'",
        exit_code=2).error


def test_none_na_and_null_are_categories_and_only_empty_cells_are_missing(price_model, folder):
    model, output = price_model
    features = xpann.load_model(model).metadata["tabular"]["features"]
    heating = next(spec for spec in features["columns"] if spec["name"] == "heating")
    assert heating["categories"] == ["NA", "None", "electric", "gas"]
    assert "Missing values in the training rows: none." in output
    result = CliRunner().invoke(cli, ["predict", str(model), str(folder / "new.csv"), "--out",
                                      str(folder / "p.csv")])
    assert result.exit_code == 0 and "not seen in training" not in result.output
    assert "None, NA, N/A and null are ordinary text" in " ".join(run("train", "--help").output.split())


def test_dates_are_days_since_1970(price_model, folder):
    model, output = price_model
    assert "Column 'built' holds dates: read as days since 1970-01-01" in output
    assert "1 date (days since 1970-01-01, robustly scaled, clipped smoothly to +-3)" in output
    assert "categories" not in output  # neither one-hot nor cut to 100 categories
    run("predict", model, folder / "new.csv", "--out", folder / "p.csv")
    predictions = pandas.read_csv(folder / "p.csv")
    truth = houses(60, seed=1)
    expected = 200 * truth["sqft"] + 5 * (pandas.to_datetime(truth["built"]) - pandas.Timestamp("1950-01-01")).dt.days
    assert numpy.corrcoef(predictions["prediction"], expected)[0, 1] > 0.9


def test_a_column_of_many_categories_goes_to_an_embedding_and_is_reported_once(tmp_path):
    rng = numpy.random.default_rng(0)
    towns = [f"t{i}" for i in rng.integers(0, 300, 400)]
    frame = pandas.DataFrame({"town": towns, "y": rng.choice(["a", "b"], 400)})
    frame.to_csv(tmp_path / "towns.csv", index=False)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "towns.csv"), "--target", "y", "--epochs", 1,
                                      "--val-split", 0, "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    counts = pandas.Series(towns).value_counts()
    kept, once = int((counts >= 2).sum()), int((counts == 1).sum())
    assert result.output.count(f"Column 'town' has more than 16 categories: an embedding of width 4 for {kept} "
                               f"of them; {once} seen once share the unknown code.") == 1
    assert "not seen in training" not in result.output and "Warning" not in result.output
    model = xpann.load_model(tmp_path / "m.npz")
    first = model.layers[0]
    assert type(first).__name__ == "CategoryEmbedding" and first.input_dims == [kept + 2]
    pandas.DataFrame({"town": ["nowhere", counts.index[0]]}).to_csv(tmp_path / "new.csv", index=False)
    predicted = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.npz"), str(tmp_path / "new.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert "Warning: Column 'town': 1 row(s) hold categories not seen in training (or seen only once) " \
           "('nowhere'); they get the unknown category's code." in predicted.stderr


def test_a_stray_word_in_a_number_column_is_missing_with_a_warning(folder, tmp_path):
    frame = houses()
    frame["sqft"] = frame["sqft"].astype(object)
    frame.loc[5, "sqft"] = "unknown"
    frame.loc[9, "sqft"] = "1,699.0"  # a thousands separator is read as a number
    frame.to_csv(tmp_path / "stray.csv", index=False)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "stray.csv"), "--target", "price", "--drop",
                                      "expensive", "--epochs", 1, "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    assert "Warning: Column 'sqft' holds numbers except 'unknown' (1 cell(s), first on line 7); read as " \
           "missing" in result.stderr
    features = xpann.load_model(tmp_path / "m.npz").metadata["tabular"]["features"]
    assert features["columns"][0] == {**features["columns"][0], "name": "sqft", "kind": "numeric"}
    new = houses(10, seed=1).drop(columns=["price", "expensive"])
    new["sqft"] = ["1,234.5"] + ["n/a"] + list(new["sqft"][2:])
    new.to_csv(tmp_path / "new.csv", index=False)
    predicted = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.npz"), str(tmp_path / "new.csv")])
    assert predicted.exit_code == 0, predicted.output  # as at training: the odd cell is missing
    assert "Column 'sqft' holds numbers except 'n/a' (1 cell(s), first on line 3)" in predicted.stderr


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(price=f["price"].astype(object)).replace({"price": {f["price"][6]: "unknown"}}),
     "Target column 'price' is numeric except 'unknown' on line 8"),
    (lambda f: f.assign(price=[f"${p:,.0f}" for p in f["price"]]),
     "Target column 'price' holds text such as '$"),
])
def test_a_target_that_is_not_quite_numeric_gets_the_real_reason(change, message, tmp_path):
    change(houses()).to_csv(tmp_path / "odd.csv", index=False)
    output = fails("train", tmp_path / "odd.csv", "--target", "price", "--epochs", 1, "--out", tmp_path / "m.npz",
                   culprit=(tmp_path / "odd.csv", "'price'")).error
    assert message in output and "validation fraction" not in output


def test_classification_of_distinct_numbers_says_use_regression(folder):
    output = fails("train", folder / "houses.csv", "--target", "price", "--task", "classification",
                   culprit=(folder / "houses.csv", "'price'")).error
    assert "'price' has 200 distinct values in 200 rows; classification needs repeated labels" in output
    assert "use --task regression" in output


@pytest.mark.parametrize("where", ["feature", "target"])
def test_a_value_too_large_for_float32_names_file_column_and_line(where, tmp_path):
    frame = houses().astype({"sqft": object, "price": object})
    frame.loc[3, "sqft" if where == "feature" else "price"] = "1e300"
    frame.to_csv(tmp_path / "huge.csv", index=False)
    column = "sqft" if where == "feature" else "price"
    output = fails("train", tmp_path / "huge.csv", "--target", "price", "--out", tmp_path / "m.npz",
                   culprit=(tmp_path / "huge.csv", f"'{column}'", "1e300")).error
    assert f"huge.csv: Value 1e300 in column '{column}' (line 5) is too large for float32" in output


def test_a_huge_value_at_predict_time(price_model, tmp_path):
    model, _ = price_model
    new = houses(5, seed=2).astype({"sqft": object})
    new.loc[2, "sqft"] = "-1e300"
    new.to_csv(tmp_path / "huge.csv", index=False)
    output = fails("predict", model, tmp_path / "huge.csv", culprit=(tmp_path / "huge.csv", "'sqft'", "-1e300")).error
    assert "huge.csv: Value -1e300 in column 'sqft' (line 4) is too large for float32" in output


@pytest.mark.parametrize("labels", [["true", "false"], ["1.0", "2.0"], ["yes", "None"]])
def test_labels_come_back_exactly_as_written(labels, tmp_path):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=80)
    pandas.DataFrame({"x": x, "y": numpy.where(x > 0, labels[0], labels[1])}).to_csv(tmp_path / "d.csv", index=False)
    trained = run("train", tmp_path / "d.csv", "--target", "y", "--epochs", 20, "--lr", 0.01,
                  "--out", tmp_path / "m.npz").output
    assert f"Classes: {', '.join(sorted(labels, key=lambda v: (v[0].isalpha(), v)))}." in trained
    run("predict", tmp_path / "m.npz", tmp_path / "d.csv", "--out", tmp_path / "p.csv")
    predictions = pandas.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert set(predictions["prediction"]) == set(labels)
    assert {f"probability_{label}" for label in labels} <= set(predictions.columns)
    report = json.loads(run("evaluate", tmp_path / "m.npz", tmp_path / "d.csv", "--json").stdout)
    assert {c["class"] for c in report["per_class"]} == set(labels)


@pytest.mark.parametrize("separator, name", [(";", "semicolons"), ("\t", "tabs")])
def test_semicolon_and_tab_separated_files_are_read(separator, name, tmp_path):
    frame = houses(60)
    text = frame.to_csv(sep=separator, index=False)
    if separator == ";":
        text = frame.assign(sqft=frame["sqft"] / 10).to_csv(sep=";", index=False, decimal=",")
    (tmp_path / "d.csv").write_text(text)
    output = run("train", tmp_path / "d.csv", "--target", "expensive", "--epochs", 1,
                 "--out", tmp_path / "m.npz").output
    assert f"60 rows, 8 columns (separated by {name}" in output
    if separator == ";":
        assert "decimal commas in sqft" in output
    features = xpann.load_model(tmp_path / "m.npz").metadata["tabular"]["features"]
    assert next(spec for spec in features["columns"] if spec["name"] == "sqft")["kind"] == "numeric"
    run("predict", tmp_path / "m.npz", tmp_path / "d.csv", "--out", tmp_path / "p.csv")
    assert len(pandas.read_csv(tmp_path / "p.csv")) == 60
