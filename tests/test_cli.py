"""The command line through Click's CliRunner: train, evaluate and predict round trips on every
bundled data set and on a CSV with text and missing values, and one clear message per mistake."""

import json
import sys

import numpy
import pandas
import pytest
from click.testing import CliRunner

import xpann
from xpann_cli.main import cli

from cli_runner import fails, run
from xpann.backend import backend_status

DATASETS = xpann.datasets.names()
TARGET = xpann.datasets.TARGET_COLUMN


def split_csv(frame, folder, name):
    """Every fourth row held out (the bundled files are sorted by class, so each class is in both)."""
    held_out = frame.iloc[::4]
    train_path, held_out_path = folder / f"{name}_train.csv", folder / f"{name}_held_out.csv"
    frame.drop(held_out.index).to_csv(train_path, index=False)
    held_out.to_csv(held_out_path, index=False)
    return train_path, held_out_path, held_out


def customers(n, seed):
    """Churn data with text, boolean, missing, constant and ID columns; churn follows the features."""
    rng = numpy.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50, 15, n).round(1)
    city = rng.choice(["Lyon", "Paris", "Nice", "Lille"], n)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    score = (age - 50) / 15 + (income - 50) / 15 + 1.5 * (plan == "pro") - 1.5 * (city == "Nice")
    frame = pandas.DataFrame({
        "customer_id": numpy.arange(5000, 5000 + n), "age": age, "city": city, "plan": plan,
        "income": income, "paperless": rng.random(n) < 0.5, "country": "FR",
        "churn": numpy.where(score + rng.normal(0, 0.3, n) > 0.3, "yes", "no"),
    })
    frame.loc[rng.choice(n, n // 12, replace=False), "age"] = numpy.nan
    frame.loc[rng.choice(n, n // 20, replace=False), "city"] = numpy.nan
    return frame


@pytest.fixture(scope="module")
def customer_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("customers")
    train = customers(400, seed=1)
    test = customers(150, seed=2)
    test.loc[test.index[:4], "city"] = "Marseille"  # a category the model never saw
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    test.drop(columns=["churn"]).to_csv(folder / "new.csv", index=False)
    model = folder / "churn.npz"
    result = run("train", folder / "train.csv", "--target", "churn", "--epochs", 40, "--out", model)
    return folder, model, test, result


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iris")
    run("train", "--dataset", "iris", "--epochs", 30, "--batch-size", 16, "--out", folder / "iris.npz")
    return folder / "iris.npz"


# ----- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_round_trip_on_each_bundled_data_set(name, tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path(name))
    train_path, held_out_path, held_out = split_csv(frame, tmp_path, name)
    model = tmp_path / "model.npz"
    trained = run("train", train_path, "--target", TARGET, "--out", model, "--seed", 1)
    assert "metric" in trained.output and "validation" in trained.output and model.exists()

    evaluated = json.loads(run("evaluate", model, held_out_path, "--target", TARGET, "--json").output)
    out = tmp_path / "predictions.csv"
    run("predict", model, held_out_path, "--out", out)
    predictions = pandas.read_csv(out)
    assert list(predictions.columns[:len(frame.columns)]) == list(frame.columns)
    if xpann.datasets.load(name).task == "classification":
        accuracy = (predictions["prediction"] == held_out[TARGET].to_numpy()).mean()
        chance = held_out[TARGET].value_counts(normalize=True).max()  # always guessing the commonest class
        assert accuracy >= max(0.8, chance + 0.2)
        assert evaluated["metrics"]["accuracy"] == pytest.approx(accuracy)
        classes = sorted(frame[TARGET].unique())
        assert [c for c in predictions.columns if c.startswith("probability_")] == \
            [f"probability_{c}" for c in classes]
        numpy.testing.assert_allclose(predictions[[f"probability_{c}" for c in classes]].sum(axis=1), 1, atol=1e-4)
    else:
        truth = held_out[TARGET].to_numpy()
        r2 = 1 - ((predictions["prediction"] - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
        assert r2 > 0.25  # far better than predicting the mean (r2 = 0)
        assert evaluated["metrics"]["r2"] == pytest.approx(r2, abs=1e-3)
        assert evaluated["metrics"]["mae"] == pytest.approx(
            numpy.abs(predictions["prediction"] - truth).mean(), rel=1e-3)


def test_train_with_no_arguments_uses_iris_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train")
    assert "bundled 'iris' data set" in result.output
    assert "Task: classification" in result.output
    assert "accuracy" in result.output and "samples/s" in result.output and "numpy" in result.output
    assert (tmp_path / "model.npz").exists()
    epoch_lines = [line for line in result.output.splitlines() if line.startswith("Epoch ")]
    chosen = xpann.tabular.load(tmp_path / "model.npz").trained_on
    # one line per epoch off a terminal; 150 rows: the count the 5 folds chose, then on every row
    assert len(epoch_lines) == chosen["epochs"] == int(numpy.argmin(chosen["fold_val_loss"])) + 1
    assert f"{chosen['epochs']} epochs (the lowest mean val_loss" in result.output


def test_text_and_missing_values_end_to_end(customer_files):
    folder, model, test, trained = customer_files
    output = trained.output
    assert "Missing values in the training rows" in output and "age" in output and "median" in output
    assert "Dropped column 'customer_id': looks like a row ID" in output
    assert "Dropped column 'country': constant" in output
    assert "Classes: no, yes." in output

    result = CliRunner().invoke(cli, ["evaluate", str(model), str(folder / "test.csv"), "--target", "churn",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert "Marseille" in result.stderr and "all zeros" in result.stderr
    report = json.loads(result.stdout)
    majority = test["churn"].value_counts(normalize=True).max()
    assert report["metrics"]["accuracy"] > majority + 0.1
    assert [c["class"] for c in report["per_class"]] == ["no", "yes"]
    assert numpy.sum(report["confusion_matrix"]["matrix"]) == len(test)


def test_predict_on_rows_without_the_target(customer_files):
    folder, model, test, _ = customer_files
    out = folder / "predictions.csv"
    run("predict", model, folder / "new.csv", "--out", out)
    predictions = pandas.read_csv(out, keep_default_na=False, dtype=str)
    original = pandas.read_csv(folder / "new.csv", keep_default_na=False, dtype=str)
    pandas.testing.assert_frame_equal(predictions[original.columns], original)  # rows unchanged
    assert set(predictions["prediction"]) <= {"no", "yes"}
    assert list(predictions.columns[-3:]) == ["prediction", "probability_no", "probability_yes"]
    accuracy = (predictions["prediction"].to_numpy() == test["churn"].to_numpy()).mean()
    assert accuracy > test["churn"].value_counts(normalize=True).max() + 0.1


def test_predict_writes_to_standard_output(iris_model, tmp_path):
    rows = pandas.read_csv(xpann.datasets.csv_path("iris")).drop(columns=[TARGET]).iloc[:5]
    rows.to_csv(tmp_path / "five.csv", index=False)
    result = CliRunner().invoke(cli, ["predict", str(iris_model), str(tmp_path / "five.csv")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith("prediction,probability_setosa,probability_versicolor,probability_virginica")
    assert len(lines) == 6 and all(line.split(",")[4] == "setosa" for line in lines[1:])


def test_evaluate_human_report_for_a_classifier(iris_model):
    result = run("evaluate", iris_model, xpann.datasets.csv_path("iris"))  # --target defaults to the trained one
    output = result.output
    for text in ("accuracy", "precision", "recall", "Confusion matrix", "setosa", "virginica"):
        assert text in output


def test_regression_reports_in_the_target_units(tmp_path):
    model = tmp_path / "diabetes.npz"
    trained = run("train", "--dataset", "diabetes", "--epochs", 10, "--out", model)
    assert "Task: regression" in trained.output and "rmse" in trained.output
    result = run("evaluate", model, xpann.datasets.csv_path("diabetes"))
    assert "mae" in result.output and "r2" in result.output and "units of 'target'" in result.output
    run("predict", model, xpann.datasets.csv_path("diabetes"), "--out", tmp_path / "p.csv")
    predictions = pandas.read_csv(tmp_path / "p.csv")["prediction"]
    assert 100 < predictions.mean() < 200  # disease progression units (mean about 152), not standardised
    assert not any(c.startswith("probability_") for c in pandas.read_csv(tmp_path / "p.csv").columns)


def test_whole_number_targets_with_few_values_are_classes_and_come_back_as_numbers(tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path("iris"))
    frame[TARGET] = frame[TARGET].map({"setosa": 0, "versicolor": 1, "virginica": 2})
    frame.to_csv(tmp_path / "coded.csv", index=False)
    trained = run("train", tmp_path / "coded.csv", "--target", TARGET, "--epochs", 30, "--out", tmp_path / "m.npz")
    assert "Task: classification" in trained.output and "whole numbers" in trained.output
    run("predict", tmp_path / "m.npz", tmp_path / "coded.csv", "--out", tmp_path / "p.csv")
    predictions = pandas.read_csv(tmp_path / "p.csv")
    assert set(predictions["prediction"]) <= {0, 1, 2}
    assert "probability_0" in predictions.columns
    forced = run("train", tmp_path / "coded.csv", "--target", TARGET, "--task", "regression", "--epochs", 2,
                 "--out", tmp_path / "r.npz")
    assert "Task: regression (as asked" in forced.output


def test_early_stopping_and_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("train", "--dataset", "wine", "--epochs", 300, "--patience", 2, "--lr", 0.01,
                 "--plot", tmp_path / "curves.png", "--out", tmp_path / "m.npz")
    assert "Stopped early after epoch" in result.output
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_matplotlib_is_one_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = fails("train", "--dataset", "iris", "--epochs", 1, "--plot", tmp_path / "c.png",
                   "--out", tmp_path / "m.npz", culprit=("--plot", "matplotlib"))
    assert "pip install 'xpann[plot]'" in result.error
    assert not (tmp_path / "m.npz").exists()


def test_diverging_training_fails_and_saves_nothing(tmp_path):
    out = tmp_path / "m.npz"
    result = fails("train", "--dataset", "diabetes", "--optimizer", "sgd", "--lr", 100, "--epochs", 5,
                   "--out", out, culprit=("--lr", "100"))
    assert "Training failed" in result.error and "nan" in result.error and "No model was saved" in result.error
    assert "Warning: overflow" not in result.output
    assert not out.exists()


def test_info_lists_versions_and_backends():
    result = run("info")
    for text in ("xpann", "Python", "NumPy", "BLAS", "CuPy", "CUDA", "numpy", "cupy"):
        assert text in result.output
    facts = json.loads(run("info", "--json").output)
    status = backend_status()
    assert facts["backends"]["numpy"]["available"] is True
    assert facts["backends"]["cupy"]["reason"] == status["cupy"]
    assert facts["numpy"] == numpy.__version__


def test_backend_cupy(tmp_path):
    reason = backend_status()["cupy"]
    arguments = ["train", "--dataset", "iris", "--epochs", 2, "--backend", "cupy", "--out", tmp_path / "m.npz"]
    if reason is None:  # a working GPU: the same command trains there
        assert "cupy" in run(*arguments).output
        return
    result = fails(*arguments, culprit="cupy")
    assert result.output.strip() == f"Error: {reason}"
    assert "pip install" in result.output and not (tmp_path / "m.npz").exists()


# ----- what the commands report -----------------------------------------------------------------


def test_evaluate_names_the_column_given_and_warns_about_training_rows(iris_model, tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path("iris")).rename(columns={TARGET: "truth"})
    frame.loc[frame.index[:3], "truth"] = "daisy"
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    result = fails("evaluate", iris_model, tmp_path / "renamed.csv", "--target", "truth",
                   culprit=(tmp_path / "renamed.csv", "'truth'", "'daisy'"))
    assert "Warning: scoring the model's predictions of 'target' against the column 'truth'" in result.output
    assert "Target column 'truth' holds label(s) the model never saw in training: 'daisy' in 3 of 150 rows " \
           "(lines 2, 3, 4)" in result.output
    trained_on_file = run("evaluate", iris_model, "--dataset", "iris")  # the very rows it was trained on
    assert "is the file the model was trained on: these rows include its 120 training rows" in trained_on_file.output
    held_out = pandas.read_csv(xpann.datasets.csv_path("iris")).iloc[::7]
    held_out.to_csv(tmp_path / "held_out.csv", index=False)
    assert "Warning" not in run("evaluate", iris_model, tmp_path / "held_out.csv").output


def test_predict_and_evaluate_take_a_bundled_data_set(iris_model, tmp_path):
    run("predict", iris_model, "--dataset", "iris", "--out", tmp_path / "p.csv")
    assert len(pandas.read_csv(tmp_path / "p.csv")) == 150
    report = json.loads(run("evaluate", iris_model, "--dataset", "iris", "--json").stdout)
    assert report["data"] == str(xpann.datasets.csv_path("iris")) and report["metrics"]["accuracy"] > 0.8
    trained = run("train", "--dataset", "wine", "--epochs", 1, "--out", tmp_path / "m.npz")
    assert f"bundled data set 'wine' ({xpann.datasets.csv_path('wine')})" in trained.output


def test_training_keeps_the_best_validation_epoch_and_labels_the_epoch_lines(tmp_path):
    result = run("train", "--dataset", "diabetes", "--epochs", 40, "--lr", 0.01, "--out", tmp_path / "m.npz")
    output = result.output
    assert "the model keeps the weights of the epoch with the lowest val_loss" in output
    assert output.count("on the standardised target") == 1
    losses = [float(line.split("val_loss: ")[1].split()[0]) for line in output.splitlines()
              if line.startswith("Epoch ")]
    best = int(numpy.argmin(losses))
    assert f"Kept the weights of epoch {best + 1} of 40, the one with the lowest val_loss ({losses[best]:.4f})" in output
    table_loss = next(line for line in output.splitlines() if line.startswith("loss (standardised mse)"))
    assert float(table_loss.split()[-1]) == pytest.approx(losses[best], abs=2e-4)
    stored = xpann.load_model(tmp_path / "m.npz").metadata["tabular"]["trained_on"]
    assert stored["best_epoch"] == best + 1 and stored["epochs"] == 40
    no_validation = run("train", "--dataset", "iris", "--epochs", 2, "--val-split", 0, "--out", tmp_path / "n.npz")
    assert "keeps the last epoch's weights" in no_validation.output


def test_prediction_files_follow_the_umask(iris_model, tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        run("predict", iris_model, xpann.datasets.csv_path("iris"), "--out", tmp_path / "p.csv")
    finally:
        os.umask(previous)
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o644


def test_missing_values_only_in_dropped_columns(tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path("iris"))
    frame["notes"] = ["checked"] * 2 + [None] * (len(frame) - 2)  # constant where filled: dropped
    frame.to_csv(tmp_path / "d.csv", index=False)
    output = run("train", tmp_path / "d.csv", "--target", TARGET, "--epochs", 1, "--out", tmp_path / "m.npz").output
    assert "Missing values in the training rows: none (in the columns used)." in output
    assert "0 filled" not in output


def test_a_network_without_hidden_layers_names_its_initializer(tmp_path):
    output = run("train", "--dataset", "iris", "--hidden", "", "--epochs", 1, "--out", tmp_path / "m.npz").output
    assert "Network: 4 -> 3 softmax (glorot_uniform)" in output
    assert "(he_normal hidden, glorot_uniform output)" in run(
        "train", "--dataset", "iris", "--epochs", 1, "--out", tmp_path / "m.npz").output


def test_info_flags_a_bad_backend_variable(monkeypatch):
    monkeypatch.setenv("XPANN_BACKEND", "bogus")
    result = run("info")
    assert "Default backend: INVALID: XPANN_BACKEND='bogus' is not a backend" in result.output
    assert "not a backend" in json.loads(run("info", "--json").output)["default_backend_error"]
