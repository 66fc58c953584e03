"""The numbers ``xpann evaluate`` and ``xpann train`` report, checked against an independent
computation: scikit-learn's metrics on the predictions ``xpann predict`` writes for the same file,
and row counts taken from the CSV text itself.

The classifier's data are imbalanced (about 60/30/10) and its predictions imperfect, so that
precision differs from recall and the confusion matrix is not symmetric: swapping the two, or
transposing the matrix, changes what these tests compare. The regression's target is in units
far from the standardised scale (mean about 2000, standard deviation about 600), so a metric
left on that scale is far off. Some rows of every file have an empty target cell.
"""

import csv
import json

import numpy
import pandas
import pytest
from sklearn.metrics import (accuracy_score, confusion_matrix, mean_absolute_error, mean_squared_error,
                             precision_recall_fscore_support, r2_score)

from cli_runner import run

CLASSES = ["ant", "bee", "cat"]


def animals(n, seed, empty):
    """Three imbalanced classes that overlap along x1; ``empty`` rows have no label."""
    rng = numpy.random.default_rng(seed)
    label = rng.choice(CLASSES, n, p=[0.6, 0.3, 0.1])
    centre = pandas.Series(label).map({"ant": 0.0, "bee": 1.2, "cat": 2.4}).to_numpy()
    frame = pandas.DataFrame({"x1": (centre + rng.normal(0, 0.6, n)).round(3), "x2": rng.normal(0, 1, n).round(3),
                              "colour": rng.choice(["red", "blue"], n), "label": label})
    frame.loc[rng.choice(n, empty, replace=False), "label"] = ""
    return frame


def prices(n, seed, empty):
    """A price of about 2000 +- 600 that follows x, with noise; ``empty`` rows have no price."""
    rng = numpy.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    frame = pandas.DataFrame({"x": x.round(3), "z": rng.normal(0, 1, n).round(3),
                              "price": (2000 + 600 * x + rng.normal(0, 300, n)).round(1).astype(object)})
    frame.loc[rng.choice(n, empty, replace=False), "price"] = ""
    return frame


def empty_target_cells(path, target):
    """How many data rows of the CSV file have an empty (or blank) ``target`` cell, read as text."""
    with open(path, newline="") as stream:
        return sum(1 for row in csv.DictReader(stream) if not row[target].strip())


def truth_and_predictions(data, predictions, target):
    """(true values, predicted values) of the rows whose target cell is filled, as text."""
    rows = pandas.read_csv(data, dtype=str, keep_default_na=False)
    predicted = pandas.read_csv(predictions, dtype=str, keep_default_na=False)
    assert len(rows) == len(predicted)
    filled = (rows[target].str.strip() != "").to_numpy()
    return rows[target].to_numpy()[filled], predicted["prediction"].to_numpy()[filled]


def _trained(folder, make, target):
    """Train on 300 rows of ``make`` (7 empty targets), predict for 200 more: the paths, the
    training output and the true and predicted values of the held-out rows."""
    make(300, seed=1, empty=7).to_csv(folder / "train.csv", index=False)
    make(200, seed=2, empty=9).to_csv(folder / "test.csv", index=False)
    model = folder / "model.npz"
    trained = run("train", folder / "train.csv", "--target", target, "--epochs", 5, "--lr", 0.01, "--out", model)
    run("predict", model, folder / "test.csv", "--out", folder / "predictions.csv")
    truth, predicted = truth_and_predictions(folder / "test.csv", folder / "predictions.csv", target)
    return {"folder": folder, "model": model, "trained": trained.output, "truth": truth, "predicted": predicted}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("reports_classifier"), animals, "label")


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    trained = _trained(tmp_path_factory.mktemp("reports_regression"), prices, "price")
    return {**trained, "truth": trained["truth"].astype(float), "predicted": trained["predicted"].astype(float)}


def expected_classification(classifier, labels):
    truth, predicted = classifier["truth"], classifier["predicted"]
    precision, recall, _, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                    zero_division=numpy.nan)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    # the data must be able to catch a swap or a transpose
    assert not numpy.array_equal(matrix, matrix.T), matrix
    assert any(abs(p - r) > 0.01 for p, r in zip(precision, recall)), (precision, recall)
    assert len(set(predicted)) == len(labels)  # every class is predicted: no precision is 0 / 0
    return {"precision": precision, "recall": recall, "support": support, "matrix": matrix,
            "accuracy": accuracy_score(truth, predicted), "correct": int(numpy.trace(matrix)), "rows": len(truth)}


def table_after(output, first_cell):
    """The rows (lists of cells) of the aligned table whose header row starts with ``first_cell``,
    header included, up to the next blank line."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_cell])
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


# ----- a classifier -----------------------------------------------------------------------------


def test_evaluate_json_matches_scikit_learn_for_a_classifier(classifier):
    report = json.loads(run("evaluate", classifier["model"], classifier["folder"] / "test.csv", "--json").stdout)
    labels = report["confusion_matrix"]["labels"]
    assert sorted(labels) == CLASSES
    expected = expected_classification(classifier, labels)
    assert report["rows"] == expected["rows"]
    assert report["metrics"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    assert [c["class"] for c in report["per_class"]] == labels
    for i, shown in enumerate(report["per_class"]):
        assert shown["precision"] == pytest.approx(expected["precision"][i], abs=1e-12), shown
        assert shown["recall"] == pytest.approx(expected["recall"][i], abs=1e-12), shown
        assert shown["support"] == expected["support"][i], shown
    assert report["confusion_matrix"]["matrix"] == expected["matrix"].tolist()


def test_evaluate_table_matches_scikit_learn_for_a_classifier(classifier):
    output = run("evaluate", classifier["model"], classifier["folder"] / "test.csv").output
    per_class = table_after(output, "class")
    assert per_class[0] == ["class", "precision", "recall", "support"]
    labels = [row[0] for row in per_class[1:]]
    assert sorted(labels) == CLASSES
    expected = expected_classification(classifier, labels)
    for i, (label, precision, recall, support) in enumerate(per_class[1:]):
        assert float(precision) == pytest.approx(expected["precision"][i], abs=5.1e-4), label
        assert float(recall) == pytest.approx(expected["recall"][i], abs=5.1e-4), label
        assert int(support.replace(",", "")) == expected["support"][i], label

    heading = "Confusion matrix (rows: true class, columns: predicted class):"
    assert heading in output
    matrix = table_after(output.split(heading)[1], labels[0])
    assert matrix[0] == labels  # the header row: the predicted classes
    assert [row[0] for row in matrix[1:]] == labels  # the true classes
    assert [[int(cell) for cell in row[1:]] for row in matrix[1:]] == expected["matrix"].tolist()

    accuracy = next(row for row in table_after(output, "metric") if row[0] == "accuracy")
    assert float(accuracy[1]) == pytest.approx(expected["accuracy"], abs=5.1e-5)
    assert accuracy[2:] == [f"({expected['correct']}", "of", f"{expected['rows']})"]


# ----- a regression -----------------------------------------------------------------------------


def expected_regression(regression):
    truth, predicted = regression["truth"], regression["predicted"]
    mse = mean_squared_error(truth, predicted)
    expected = {"mae": mean_absolute_error(truth, predicted), "mse": mse, "rmse": float(numpy.sqrt(mse)),
                "r2": r2_score(truth, predicted), "rows": len(truth)}
    assert expected["mae"] > 50 and expected["r2"] < 0.99  # in price units, and imperfect
    return expected


def test_evaluate_json_matches_scikit_learn_for_a_regression(regression):
    report = json.loads(run("evaluate", regression["model"], regression["folder"] / "test.csv", "--json").stdout)
    expected = expected_regression(regression)
    metrics = report["metrics"]
    assert report["rows"] == expected["rows"]
    assert {"mae", "rmse", "r2"} <= set(metrics)
    for name in ["mae", "rmse"] + (["mse"] if "mse" in metrics else []):
        assert metrics[name] == pytest.approx(expected[name], rel=1e-4), name
    assert metrics["r2"] == pytest.approx(expected["r2"], abs=1e-4)


def test_evaluate_table_matches_scikit_learn_for_a_regression(regression):
    output = run("evaluate", regression["model"], regression["folder"] / "test.csv").output
    expected = expected_regression(regression)
    shown = {row[0]: row[-1] for row in table_after(output, "metric")[1:]}
    assert {"mae", "rmse", "r2"} <= set(shown)
    for name in ["mae", "rmse"] + (["mse"] if "mse" in shown else []):
        assert float(shown[name]) == pytest.approx(expected[name], rel=1e-4), name
    assert float(shown["r2"]) == pytest.approx(expected["r2"], abs=2e-4)
    assert "(mae and rmse in the units of 'price')" in output


# ----- rows without a target value --------------------------------------------------------------


@pytest.mark.parametrize("kind, target", [("classifier", "label"), ("regression", "price")])
def test_train_counts_the_rows_it_skips(kind, target, request):
    fitted = request.getfixturevalue(kind)
    path = fitted["folder"] / "train.csv"
    skipped = empty_target_cells(path, target)
    rows = pandas.read_csv(path, dtype=str, keep_default_na=False)
    assert skipped > 0
    output = fitted["trained"]
    assert f"Data: {path}: {len(rows)} rows, {len(rows.columns)} columns." in output
    lines = [line for line in output.splitlines() if line.startswith("Skipped ")]
    assert lines == [f"Skipped {skipped} row(s) with no value in the target column {target!r}."]


@pytest.mark.parametrize("kind, target", [("classifier", "label"), ("regression", "price")])
def test_evaluate_counts_the_rows_it_skips(kind, target, request):
    fitted = request.getfixturevalue(kind)
    path = fitted["folder"] / "test.csv"
    skipped = empty_target_cells(path, target)
    total = len(pandas.read_csv(path, dtype=str, keep_default_na=False))
    assert skipped > 0
    report = json.loads(run("evaluate", fitted["model"], path, "--json").stdout)
    assert report["skipped_rows"] == skipped and report["rows"] == total - skipped
    output = run("evaluate", fitted["model"], path).output
    assert f"Data: {path}: {total - skipped} rows ({skipped} skipped: no value in {target!r})." in output


def test_evaluate_without_empty_target_cells_skips_none(classifier, tmp_path):
    frame = pandas.read_csv(classifier["folder"] / "test.csv", dtype=str, keep_default_na=False)
    filled = frame[frame["label"] != ""]
    filled.to_csv(tmp_path / "filled.csv", index=False)
    report = json.loads(run("evaluate", classifier["model"], tmp_path / "filled.csv", "--json").stdout)
    assert report["skipped_rows"] == 0 and report["rows"] == len(filled)
    output = run("evaluate", classifier["model"], tmp_path / "filled.csv").output
    assert f"Data: {tmp_path / 'filled.csv'}: {len(filled)} rows." in output and "skipped" not in output
