"""xpann.tabular.TabularModel: the same model from a DataFrame, a CSV path and ``xpann train``;
predictions in the user's terms; columns as users have them; weights; files."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy
import pandas
import pytest

import xpann
from xpann.tabular import TabularModel, load

from cli_runner import run
from conftest import assert_weights_equal

TARGET = xpann.datasets.TARGET_COLUMN


def houses(n=120, seed=0):
    """Prices with numbers, text, dates, gaps and an ID; price follows the features."""
    rng = numpy.random.default_rng(seed)
    sqft = rng.normal(120, 30, n).round(1)
    town = rng.choice(["Lyon", "Paris", "Nice"], n)
    built = pandas.to_datetime("1960-01-01") + pandas.to_timedelta(rng.integers(0, 20000, n), unit="D")
    price = 1000 * sqft + 40_000 * (town == "Paris") + rng.normal(0, 5000, n) + 50_000
    frame = pandas.DataFrame({"id": numpy.arange(1, n + 1), "sqft": sqft, "town": town,
                              "built": built.strftime("%Y-%m-%d"), "price": price.round(0)})
    frame.loc[3, "sqft"] = numpy.nan
    frame.loc[5, "town"] = numpy.nan
    return frame


def weights_of(model):
    return [numpy.asarray(w) for w in model.get_weights()]


def assert_same_weights(a, b):
    assert_weights_equal(weights_of(a), weights_of(b))


def test_a_frame_a_path_and_the_cli_give_the_same_model(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path, index=False)
    options = dict(target="price", hidden=(16,), epochs=3, seed=4, verbose=0)
    from_path = TabularModel(**options).fit(path)
    from_frame = TabularModel(**options).fit(pandas.read_csv(path))
    run("train", path, "--target", "price", "--hidden", "16", "--epochs", 3, "--seed", 4, "--out", tmp_path / "m.npz")
    from_cli = load(tmp_path / "m.npz")
    assert_same_weights(from_path.model, from_frame.model)
    assert_same_weights(from_path.model, from_cli.model)
    predicted = from_path.predict(path)
    assert predicted.name == "price" and list(predicted.index) == list(range(120))
    assert numpy.array_equal(predicted.to_numpy(), from_cli.predict(pandas.read_csv(path)).to_numpy())
    run("predict", tmp_path / "m.npz", path, "--out", tmp_path / "p.csv")
    written = pandas.read_csv(tmp_path / "p.csv")
    numpy.testing.assert_allclose(written["prediction"].to_numpy(), predicted.to_numpy(), rtol=5e-7)  # 7 digits


def test_a_parquet_file_gives_the_model_its_frame_gives(tmp_path):
    pytest.importorskip("pyarrow")
    frame = houses()
    frame.to_parquet(tmp_path / "houses.parquet")
    options = dict(target="price", hidden=(8,), epochs=2, seed=1, verbose=0)
    from_file = TabularModel(**options).fit(tmp_path / "houses.parquet")
    assert_same_weights(from_file.model, TabularModel(**options).fit(frame).model)
    pandas.testing.assert_series_equal(from_file.predict(tmp_path / "houses.parquet"), from_file.predict(frame))


def test_regression_predictions_come_back_in_the_target_units():
    frame = houses(300)
    model = TabularModel(target="price", epochs=60, hidden=(32,), val_split=0, verbose=0).fit(frame)
    predicted = model.predict(frame)
    encoder = model.target_encoder
    outputs = model.model.predict(model.transform(frame))[:, 0]
    numpy.testing.assert_allclose(predicted.to_numpy(), outputs.astype(numpy.float64) * encoder.scale + encoder.mean)
    assert encoder.mean == pytest.approx(frame["price"].mean()) and encoder.scale == pytest.approx(frame["price"].std(ddof=0))
    # in the target's units: the fitted prices are within a few percent of the true ones
    assert numpy.median(numpy.abs(predicted - frame["price"]) / frame["price"]) < 0.1
    metrics = model.evaluate(frame)
    rmse = float(numpy.sqrt(numpy.mean((predicted.to_numpy() - frame["price"].to_numpy()) ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse, rel=1e-4)
    assert metrics["mae"] == pytest.approx(float(numpy.mean(numpy.abs(predicted - frame["price"]))), rel=1e-4)


def test_classification_labels_as_written_and_probabilities_per_label(tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path("iris"))
    model = TabularModel(target=TARGET, seed=1, verbose=0).fit(frame)
    assert model.task == "classification" and model.classes_ == ["setosa", "versicolor", "virginica"]
    probabilities = model.predict_proba(frame)
    assert list(probabilities.columns) == model.classes_ and probabilities.index.equals(frame.index)
    numpy.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    predicted = model.predict(frame)
    assert list(predicted) == list(probabilities.idxmax(axis=1))
    assert model.evaluate(frame)["accuracy"] == pytest.approx(float((predicted == frame[TARGET]).mean()))
    shuffled = frame.sample(frac=1.0, random_state=0)
    assert model.predict(shuffled).index.equals(shuffled.index)


def test_columns_are_matched_by_name(tmp_path):
    frame = houses()
    model = TabularModel(target="price", epochs=2, verbose=0).fit(frame)
    expected = model.predict(frame)
    reordered = frame[["town", "price", "built", "sqft", "id"]].assign(extra=1.0)
    pandas.testing.assert_series_equal(model.predict(reordered), expected)
    with pytest.raises(ValueError, match="Missing feature column 'town'"):
        model.predict(frame.drop(columns=["town"]))
    assert model.feature_names_in_ == ["id", "sqft", "town", "built"]
    assert "id" in model.preprocessor.dropped  # an ID column: not needed at predict
    model.predict(frame.drop(columns=["id"]))


def test_an_unseen_category_is_a_warning_and_not_an_error():
    frame = houses()
    model = TabularModel(target="price", epochs=2, verbose=0).fit(frame)
    new = frame.head(3).assign(town=["Brest", "Lyon", "Brest"])
    with pytest.warns(UserWarning, match=r"'town': 2 row\(s\) hold categories not seen in training \('Brest'\)"):
        predicted = model.predict(new)
    assert predicted.notna().all()


@pytest.mark.parametrize("dtype", ["category", "bool", "Int64", "Float64", "string", "datetime64"])
def test_pandas_dtypes_are_respected(dtype):
    rng = numpy.random.default_rng(0)
    n = 80
    base = rng.integers(0, 3, n)
    column = {
        "category": pandas.Categorical(numpy.array(["low", "mid", "high"])[base]),
        "bool": base > 0,
        "Int64": pandas.array(list(base[:-1]) + [None], dtype="Int64"),
        "Float64": pandas.array(list(base[:-1] * 1.5) + [None], dtype="Float64"),
        "string": pandas.array(list(numpy.array(["a", "b", "c"])[base][:-1]) + [None], dtype="string"),
        "datetime64": pandas.to_datetime("2020-01-01") + pandas.to_timedelta(base * 30, unit="D"),
    }[dtype]
    frame = pandas.DataFrame({"feature": column, "y": numpy.where(base > 0, "yes", "no")})
    model = TabularModel(target="y", epochs=40, hidden=(8,), lr=0.01, verbose=0).fit(frame)
    kind = model.preprocessor.columns[0]["kind"]
    assert kind == {"category": "categorical", "bool": "categorical", "Int64": "numeric", "Float64": "numeric",
                    "string": "categorical", "datetime64": "date"}[dtype]
    assert model.evaluate(frame)["accuracy"] >= 0.95  # y follows the feature
    assert model.predict(frame.iloc[:5]).isin(["yes", "no"]).all()


def test_save_and_load_round_trip_and_cli_files(tmp_path):
    frame = houses()
    model = TabularModel(target="price", epochs=2, hidden=(8,), seed=3, verbose=0).fit(frame)
    model.save(tmp_path / "m.npz")
    again = load(tmp_path / "m.npz")
    assert_same_weights(model.model, again.model)
    pandas.testing.assert_series_equal(again.predict(frame), model.predict(frame))
    assert again.task == "regression" and again.feature_names_in_ == model.feature_names_in_
    assert again.history == model.history and again.options["hidden"] == (8,) and again.options["seed"] == 3
    run("train", "--dataset", "wine", "--epochs", 2, "--out", tmp_path / "wine.npz")
    wine = load(tmp_path / "wine.npz")
    table = pandas.read_csv(xpann.datasets.csv_path("wine"))
    assert wine.task == "classification" and wine.classes_ == sorted(table[TARGET].unique())
    assert wine.predict(table).isin(wine.classes_).all()
    with pytest.raises(ValueError, match="No model file"):
        load(tmp_path / "missing.npz")


def test_evaluate_gives_what_xpann_evaluate_json_prints(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path, index=False)
    run("train", path, "--target", "price", "--epochs", 2, "--out", tmp_path / "m.npz")
    printed = json.loads(run("evaluate", tmp_path / "m.npz", path, "--json").stdout)
    assert load(tmp_path / "m.npz").evaluate(path) == printed["metrics"]


def test_class_weights_are_sample_weights_by_label():
    frame = pandas.read_csv(xpann.datasets.csv_path("breast_cancer"))
    labels = sorted(frame[TARGET].unique())
    by_class = TabularModel(target=TARGET, epochs=2, class_weight={labels[0]: 3.0}, verbose=0).fit(frame)
    column = frame.assign(w=numpy.where(frame[TARGET] == labels[0], 3.0, 1.0))
    by_column = TabularModel(target=TARGET, epochs=2, verbose=0).fit(column, sample_weight="w")
    by_array = TabularModel(target=TARGET, epochs=2, verbose=0).fit(frame, sample_weight=column["w"].to_numpy())
    assert_same_weights(by_class.model, by_column.model)
    assert_same_weights(by_class.model, by_array.model)
    assert "w" not in by_column.feature_names_in_
    plain = TabularModel(target=TARGET, epochs=2, verbose=0).fit(frame)
    balanced = TabularModel(target=TARGET, epochs=2, class_weight="balanced", verbose=0).fit(frame)
    assert not numpy.array_equal(weights_of(plain.model)[0], weights_of(balanced.model)[0])
    with pytest.raises(ValueError, match="class_weight names the class 'maybe'"):
        TabularModel(target=TARGET, class_weight={"maybe": 2.0}, verbose=0).fit(frame)
    with pytest.raises(ValueError, match="one weight per row"):
        TabularModel(target=TARGET, verbose=0).fit(frame, sample_weight=[1.0, 2.0])


def test_the_cli_takes_sample_and_class_weights(tmp_path):
    frame = pandas.read_csv(xpann.datasets.csv_path("breast_cancer"))
    labels = sorted(frame[TARGET].unique())
    frame.assign(w=numpy.where(frame[TARGET] == labels[0], 3.0, 1.0)).to_csv(tmp_path / "w.csv", index=False)
    run("train", tmp_path / "w.csv", "--target", TARGET, "--epochs", 2, "--sample-weight", "w",
        "--out", tmp_path / "a.npz")
    run("train", tmp_path / "w.csv", "--target", TARGET, "--epochs", 2, "--drop", "w",
        "--class-weight", f"{labels[0]}=3", "--out", tmp_path / "b.npz")
    assert_same_weights(load(tmp_path / "a.npz").model, load(tmp_path / "b.npz").model)
    out = run("train", tmp_path / "w.csv", "--target", TARGET, "--epochs", 1, "--class-weight", "balanced",
              "--out", tmp_path / "c.npz").output
    assert "weighted rows" in out


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="val_split must be a fraction"):
        TabularModel(target="y", val_split=1.5)
    with pytest.raises(ValueError, match="patience watches the validation loss"):
        TabularModel(target="y", patience=3, val_split=0)
    with pytest.raises(ValueError, match="Unknown activation"):
        TabularModel(target="y", activation="relux")
    with pytest.raises(ValueError, match="not fitted"):
        TabularModel(target="y").predict(houses())
    with pytest.raises(ValueError, match="Target column 'prices' is not in the data.*Did you mean 'price'"):
        TabularModel(target="prices", verbose=0).fit(houses())
    with pytest.raises(ValueError, match="data must be a pandas DataFrame or the path"):
        TabularModel(target="y").fit([[1, 2]])


def test_a_high_cardinality_column_trains_through_an_embedding_in_little_memory(tmp_path):
    """100k rows, a 30k-category column: coded, embedded, and the whole fit stays well under 1 GB."""
    script = textwrap.dedent("""
        import resource, sys
        import numpy, pandas
        from xpann.tabular import TabularModel
        rng = numpy.random.default_rng(0)
        n = 100_000
        shop = rng.integers(0, 30_000, n)
        frame = pandas.DataFrame({"shop": [f"s{i}" for i in shop], "x": rng.normal(size=n),
                                  "y": rng.normal(size=n) + (shop % 7)})
        model = TabularModel(target="y", epochs=1, batch_size=256, verbose=0).fit(frame)
        spec = model.preprocessor.columns[0]
        layer = model.model.layers[0]
        print(spec["kind"], len(spec["categories"]), type(layer).__name__, layer.input_dims[0],
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    kind, kept, layer, codes, peak_kib = done.stdout.split()
    assert kind == "coded" and layer == "CategoryEmbedding" and int(codes) == int(kept) + 2
    assert int(kept) > 20_000  # nothing cut to a top-N: every category seen twice in training keeps its code
    assert int(peak_kib) < 1024 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"


def test_weight_decay_and_dropout_reach_the_network_from_python_and_the_cli(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path, index=False)
    model = TabularModel(target="price", hidden=(16, 8), weight_decay=1e-3, dropout=0.25, epochs=2, seed=2,
                         verbose=0).fit(path)
    kinds = [type(layer).__name__ for layer in model.model.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert all(layer.rate == 0.25 for layer in model.model.layers if type(layer).__name__ == "Dropout")
    assert model.model.optimizer.weight_decay == 1e-3
    run("train", path, "--target", "price", "--hidden", "16,8", "--weight-decay", "1e-3", "--dropout", "0.25",
        "--epochs", 2, "--seed", 2, "--out", tmp_path / "m.npz")
    assert_weights_equal(load(tmp_path / "m.npz").model.get_weights(), model.model.get_weights())
    plain = TabularModel(target="price", hidden=(16, 8), epochs=2, seed=2, verbose=0).fit(path)
    assert not numpy.array_equal(plain.model.get_weights()[0], model.model.get_weights()[0])
    with pytest.raises(ValueError, match="dropout must be a fraction"):
        TabularModel(target="price", dropout=1.0)


def test_a_cosine_schedule_falls_to_zero_over_the_planned_steps_from_python_and_the_cli(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path, index=False)
    model = TabularModel(target="price", lr_schedule="cosine", lr=0.01, epochs=3, batch_size=16, seed=1,
                         verbose=0).fit(path)
    schedule = model.model.optimizer.learning_rate
    steps = 3 * -(-96 // 16)  # 96 training rows of 120, 6 batches an epoch
    assert type(schedule).__name__ == "CosineDecay" and schedule.decay_steps == steps
    assert schedule(0) == 0.01 and schedule(steps) == 0.0
    run("train", path, "--target", "price", "--lr-schedule", "cosine", "--lr", "0.01", "--epochs", 3,
        "--batch-size", 16, "--seed", 1, "--out", tmp_path / "m.npz")
    assert_weights_equal(load(tmp_path / "m.npz").model.get_weights(), model.model.get_weights())
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        TabularModel(target="price", lr_schedule="linear")


def test_epochs_by_folds_choose_the_count_then_train_on_every_row(tmp_path):
    frame = houses(200)
    frame.to_csv(tmp_path / "houses.csv", index=False)
    model = TabularModel(target="price", epochs="cv", hidden=(16,), seed=3, verbose=0).fit(frame)
    assert model.trained_on["validation_rows"] == 0 and model.trained_on["training_rows"] == 200
    assert model.trained_on["best_epoch"] is None and len(model.history["loss"]) == model.trained_on["epochs"]
    curve = model.trained_on["fold_val_loss"]  # the folds' mean validation loss, epoch by epoch
    assert len(curve) == 100  # each fold trains on 160 rows, 5 batches an epoch: 100 epochs by the auto rule
    assert model.trained_on["epochs"] == int(numpy.argmin(curve)) + 1
    run("train", tmp_path / "houses.csv", "--target", "price", "--epochs", "cv", "--hidden", "16", "--seed", 3,
        "--out", tmp_path / "m.npz")
    assert_weights_equal(load(tmp_path / "m.npz").model.get_weights(), model.model.get_weights())
    with pytest.raises(ValueError, match="epochs must be 'auto', 'cv' or a whole number"):
        TabularModel(target="price", epochs="many")
    with pytest.raises(ValueError, match="epochs='cv' needs at least 10 rows"):
        TabularModel(target="price", epochs="cv", verbose=0).fit(frame.head(6))


def test_scaling_and_label_smoothing_reach_the_preprocessing_and_the_loss_from_python_and_the_cli(tmp_path):
    path = tmp_path / "houses.csv"
    frame = houses()
    frame["band"] = numpy.where(frame["price"] > frame["price"].median(), "high", "low")
    frame.to_csv(path, index=False)
    robust = TabularModel(target="band", drop=("price",), epochs=2, verbose=0).fit(path)
    sqft = next(spec for spec in robust.preprocessor.columns if spec["name"] == "sqft")
    observed = frame["sqft"].dropna()  # the training rows' median, inside the spread of all rows
    assert sqft["clip"] == 3.0 and observed.quantile(0.25) < sqft["mean"] < observed.quantile(0.75)
    assert numpy.abs(robust.transform(frame)).max() < 3.0  # every number and date column within the bound
    model = TabularModel(target="band", drop=("price",), scaling="standard", label_smoothing=0.1, epochs=2,
                         verbose=0).fit(path)
    assert "clip" not in next(spec for spec in model.preprocessor.columns if spec["name"] == "sqft")
    assert model.model.loss.label_smoothing == 0.1
    run("train", path, "--target", "band", "--drop", "price", "--scaling", "standard", "--label-smoothing", "0.1",
        "--epochs", 2, "--out", tmp_path / "m.npz")
    stored = load(tmp_path / "m.npz")
    assert stored.model.loss.label_smoothing == 0.1
    assert_weights_equal(stored.model.get_weights(), model.model.get_weights())
    with pytest.raises(ValueError, match="scaling must be one of robust, standard, got 'minmax'"):
        TabularModel(target="band", scaling="minmax")
    with pytest.raises(ValueError, match="label_smoothing must be a fraction in"):
        TabularModel(target="band", label_smoothing=1.0)


def test_columns_of_numbers_named_categorical_are_encoded_as_categories_from_python_and_the_cli(tmp_path):
    rng = numpy.random.default_rng(0)
    shop = rng.integers(100, 140, 300)  # 40 shop codes: numbers that mean nothing as numbers
    frame = pandas.DataFrame({"shop": shop, "x": rng.normal(size=300), "zone": rng.integers(1, 4, 300)})
    frame["y"] = frame["x"] + (shop % 5) - 2 * (frame["zone"] == 2)
    path = tmp_path / "shops.csv"
    frame.to_csv(path, index=False)
    plain = TabularModel(target="y", epochs=2, verbose=0).fit(frame)
    assert [spec["kind"] for spec in plain.preprocessor.columns] == ["numeric", "numeric", "numeric"]
    model = TabularModel(target="y", categorical=("shop", "zone"), epochs=2, verbose=0).fit(frame)
    kinds = {spec["name"]: spec["kind"] for spec in model.preprocessor.columns}
    assert kinds == {"shop": "coded", "x": "numeric", "zone": "categorical"}
    assert model.preprocessor.output_names[-3:] == ["zone=1", "zone=2", "zone=3"]
    new = frame.head(5).drop(columns=["y"]).astype({"shop": str, "zone": float})  # "101", 2.0: the same keys
    numpy.testing.assert_array_equal(model.transform(new), model.transform(frame.head(5)))
    run("train", path, "--target", "y", "--categorical", "shop,zone", "--epochs", 2, "--out", tmp_path / "m.npz")
    assert_weights_equal(load(tmp_path / "m.npz").model.get_weights(), model.model.get_weights())
    with pytest.raises(ValueError, match="categorical: Column 'shop_id' is not in the data.*Did you mean 'shop'"):
        TabularModel(target="y", categorical="shop_id", verbose=0).fit(frame)
