"""ONNX export: every layer and activation, the tabular preprocessing (numbers, gaps, one-hot with
unseen categories, category codes, dates, labels), the scikit-learn estimators and ``xpann export``,
each run in onnxruntime against xpann's own predictions."""

import warnings

import numpy
import pandas
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import xpann  # noqa: E402
from xpann.tabular import TabularModel  # noqa: E402

from cli_runner import run  # noqa: E402

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus"]


def session(path):
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options)


def feeds_for(preprocessor, frame):
    """One [N, 1] input per column: float for numbers (NaN where missing), text ("" where missing)."""
    feeds = {}
    for spec in preprocessor.columns:
        column = frame[spec["name"]]
        if spec["kind"] == "numeric":
            feeds[spec["name"]] = column.to_numpy(dtype=numpy.float32).reshape(-1, 1)
        else:
            feeds[spec["name"]] = column.fillna("").astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return feeds


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_layer_and_activation_gives_predict(tmp_path, activation):
    model = xpann.Sequential([
        xpann.layers.CategoryEmbedding([1], [6], [3]),
        xpann.layers.Dense(8, activation=activation),
        xpann.layers.BatchNormalization(),
        xpann.layers.Dropout(0.3),
        xpann.layers.LayerNormalization(),
        xpann.layers.Activation(activation),
        xpann.layers.Dense(3, activation="softmax"),
    ], input_dim=4, seed=0)
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    x[:, 1] = rng.integers(0, 6, 64)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, 64), epochs=2, verbose=0)  # moving statistics away from (0, 1)
    proto = xpann.export_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    (out,) = session(tmp_path / "m.onnx").run(None, {"x": x})
    numpy.testing.assert_allclose(out, model.predict(x), rtol=1e-5, atol=1e-6)


def table(n=400, seed=0):
    rng = numpy.random.default_rng(seed)
    frame = pandas.DataFrame({
        "area": rng.normal(100, 20, n).round(1),
        "town": rng.choice(["Lyon", "Paris", "Nice"], n),
        "shop": [f"s{i}" for i in rng.integers(0, 40, n)],
        "built": (pandas.to_datetime("1990-01-01") + pandas.to_timedelta(rng.integers(-9000, 9000, n), "D"))
        .strftime("%Y-%m-%d"),
    })
    frame["price"] = 1000 * frame["area"] + 20_000 * (frame["town"] == "Paris") + rng.normal(0, 3000, n)
    frame["band"] = numpy.where(frame["price"] > frame["price"].median(), "high", "low")
    frame.loc[::13, "area"] = numpy.nan
    frame.loc[::11, "town"] = numpy.nan
    frame.loc[::7, "built"] = numpy.nan
    frame.loc[::5, "shop"] = numpy.nan
    return frame


def test_a_classifier_with_its_preprocessing_gives_what_predict_writes(tmp_path):
    frame = table()
    model = TabularModel(target="band", drop=("price",), epochs=5, verbose=0).fit(frame)
    assert [spec["kind"] for spec in model.preprocessor.columns] == ["numeric", "categorical", "coded", "date"]
    xpann.export_onnx(model, tmp_path / "t.onnx")
    runner = session(tmp_path / "t.onnx")
    assert [i.name for i in runner.get_inputs()] == ["area", "town", "shop", "built"]
    new = table(60, seed=1).drop(columns=["price", "band"])
    new.loc[0, "town"] = "Brest"  # unseen: all zeros, not the last category
    new.loc[1, "shop"] = "nowhere"  # unseen: the unknown code
    new.loc[2, "area"] = 1e7  # far outside the training values: clipped smoothly to near +3
    label, probabilities = runner.run(None, feeds_for(model.preprocessor, new))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.predict_table(new)
    assert list(label) == list(expected["prediction"])
    numpy.testing.assert_allclose(probabilities, expected[["probability_high", "probability_low"]], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = model.transform(new)
    town = [i for i, name in enumerate(model.preprocessor.output_names) if name.startswith("town=")]
    assert len(town) == 4 and not x[0, town].any()  # Lyon, Nice, Paris, (missing): all zeros for Brest


def test_a_cli_model_exports_with_xpann_export_and_matches_xpann_predict(tmp_path):
    frame = table()
    frame.drop(columns=["band"]).to_csv(tmp_path / "houses.csv", index=False)
    run("train", tmp_path / "houses.csv", "--target", "price", "--epochs", 5, "--out", tmp_path / "m.npz")
    assert "Wrote" in run("export", tmp_path / "m.npz", tmp_path / "m.onnx").output
    run("predict", tmp_path / "m.npz", tmp_path / "houses.csv", "--out", tmp_path / "p.csv")
    written = pandas.read_csv(tmp_path / "p.csv")
    loaded = xpann.tabular.load(tmp_path / "m.npz")
    (prediction,) = session(tmp_path / "m.onnx").run(None, feeds_for(loaded.preprocessor, frame))
    numpy.testing.assert_allclose(prediction, written["prediction"], rtol=1e-5)


def test_scikit_learn_estimators_export(tmp_path):
    pytest.importorskip("sklearn")
    from xpann.sklearn import MLPClassifier, MLPRegressor

    data = xpann.datasets.load("iris")
    x = data.x.astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(x, data.y + 1)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(x[:, :3], x[:, 3])
    xpann.export_onnx(clf, tmp_path / "c.onnx")
    label, probabilities = session(tmp_path / "c.onnx").run(None, {"x": x})
    assert list(label) == list(clf.predict(x))
    numpy.testing.assert_allclose(probabilities, clf.predict_proba(x), atol=1e-5)
    xpann.export_onnx(reg, tmp_path / "r.onnx")
    (prediction,) = session(tmp_path / "r.onnx").run(None, {"x": x[:, :3]})
    numpy.testing.assert_allclose(prediction, reg.predict(x[:, :3]), rtol=1e-5, atol=1e-5)


def test_what_cannot_be_exported_says_why(tmp_path):
    with pytest.raises(ValueError, match="not built yet"):
        xpann.export_onnx(xpann.Sequential([xpann.layers.Dense(2)]), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="Only float32 models"):
        xpann.export_onnx(xpann.Sequential([xpann.layers.Dense(2)], input_dim=2, dtype="float64"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="export_onnx takes a Sequential"):
        xpann.export_onnx("model.npz", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be"):
        xpann.export_onnx(xpann.Sequential([xpann.layers.Dense(2)], input_dim=2), tmp_path / "m.onnx", opset=12)
    assert not (tmp_path / "m.onnx").exists()
