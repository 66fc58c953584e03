"""Saving and loading: round trips, resumed training, no pickle, atomic writes, bad files,
cross-backend files and metadata."""

import json
import os
import stat
import sys
import zipfile

import numpy
import pytest

import xpann
import xpann.io
from conftest import assert_backends_agree, assert_weights_equal
from xpann.layers import Dense, Dropout


def data(n=80, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] - x[:, 2] > 0).astype(numpy.int64) + (x[:, 1] > 1)
    return x, y


def classifier(seed=0, dropout=0.0, optimizer="adam", dtype="float32", backend=None):
    layers = [Dense(16, activation="relu", kernel_initializer="he_normal", name="hidden")]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(8, activation=xpann.activations.LeakyReLU(negative_slope=0.2)),
               Dense(3, activation="softmax")]
    model = xpann.Sequential(layers, input_dim=4, seed=seed, dtype=dtype, backend=backend)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def rewrite_config(source, target, change):
    """Copy the model file ``source`` to ``target`` with ``change(config)`` applied to its JSON."""
    with numpy.load(source, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(str(arrays["config"]))
    change(config)
    arrays["config"] = numpy.array(json.dumps(config))
    numpy.savez(target, **arrays)


# ----- round trips ----------------------------------------------------------------------------


def test_round_trip_gives_identical_predictions_and_config(backend, tmp_path):
    x, y = data()
    model = classifier(backend=backend.name)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = xpann.load_model(path)
    assert loaded.backend.name == backend.name
    assert loaded.get_config() == model.get_config()
    assert loaded.dtype == "float32" and loaded.seed == 0
    assert loaded.layer_names() == ["hidden", "dense_2", "dense_3"]
    assert loaded.layers[1].activation.negative_slope == 0.2
    assert loaded.metric_names == ["accuracy"]
    assert isinstance(loaded.loss, xpann.losses.SparseCategoricalCrossentropy)
    assert isinstance(loaded.optimizer, xpann.optimizers.Adam)
    assert_weights_equal(loaded.get_weights(), model.get_weights())
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == pytest.approx(model.evaluate(x, y), rel=1e-6)


def test_path_strings_and_names_without_a_suffix_work(tmp_path):
    model = classifier()
    path = str(tmp_path / "no_suffix")
    model.save(path)
    assert os.listdir(tmp_path) == ["no_suffix"]
    assert_weights_equal(xpann.load_model(path).get_weights(), model.get_weights())


def test_an_uncompiled_model_round_trips(tmp_path):
    model = xpann.Sequential([Dense(3, activation="sigmoid"), Dense(1)], input_dim=2, seed=1, dtype="float64")
    model.save(tmp_path / "plain.npz")
    loaded = xpann.load_model(tmp_path / "plain.npz")
    assert loaded.loss is None and loaded.dtype == "float64"
    numpy.testing.assert_array_equal(loaded.predict([[0.5, -1.0]]), model.predict([[0.5, -1.0]]))


@pytest.mark.parametrize("optimizer", [
    xpann.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    xpann.optimizers.Adagrad(learning_rate=0.05),
    xpann.optimizers.Adadelta(),
    xpann.optimizers.RMSprop(centered=True, momentum=0.5),
    xpann.optimizers.Adam(amsgrad=True, clipnorm=1.0),
    xpann.optimizers.AdamW(weight_decay=0.05),
    xpann.optimizers.Nadam(),
    xpann.optimizers.Adam(learning_rate=xpann.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.5)),
], ids=["sgd-nesterov", "adagrad", "adadelta", "rmsprop-centered", "adam-amsgrad-clipnorm", "adamw",
        "nadam", "adam-schedule"])
def test_a_loaded_model_continues_training_identically(tmp_path, optimizer):
    x, y = data()
    original = classifier(optimizer=optimizer, dtype="float64")
    original.fit(x, y, epochs=2, batch_size=16, verbose=0)
    original.save(tmp_path / "model.npz")
    loaded = xpann.load_model(tmp_path / "model.npz")
    assert type(loaded.optimizer) is type(original.optimizer)
    assert loaded.optimizer.get_config() == original.optimizer.get_config()
    assert loaded.optimizer.iterations == original.optimizer.iterations
    first = original.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0).history
    second = loaded.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0).history
    assert second == first
    assert_weights_equal(loaded.get_weights(), original.get_weights())


def test_a_loaded_model_with_dropout_continues_training_identically(tmp_path):
    x, y = data()
    original = classifier(dropout=0.3, seed=4, backend="numpy")
    original.fit(x, y, epochs=2, verbose=0)
    original.save(tmp_path / "model.npz")
    loaded = xpann.load_model(tmp_path / "model.npz", backend="numpy")
    first = original.fit(x, y, epochs=2, verbose=0).history
    assert loaded.fit(x, y, epochs=2, verbose=0).history == first
    assert_weights_equal(loaded.get_weights(), original.get_weights())


def test_a_reduced_learning_rate_is_saved(tmp_path):
    model = classifier(optimizer=xpann.optimizers.SGD(learning_rate=0.1))
    model.optimizer.learning_rate = 0.025
    model.save(tmp_path / "model.npz")
    assert xpann.load_model(tmp_path / "model.npz").optimizer.learning_rate == 0.025


def test_saving_again_replaces_the_file(tmp_path):
    x, y = data()
    model = classifier()
    path = tmp_path / "model.npz"
    model.save(path)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert_weights_equal(xpann.load_model(path).get_weights(), model.get_weights())


def test_an_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="no weights yet"):
        xpann.Sequential([Dense(2)]).save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


# ----- the file -------------------------------------------------------------------------------


def test_the_file_holds_no_pickle(tmp_path):
    x, y = data()
    model = classifier(dropout=0.2)
    model.metadata = {"classes": ["a", "b", "c"]}
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with numpy.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert all(array.dtype.kind in "biuf" for name, array in arrays.items() if name != "config")
    assert arrays["config"].dtype.kind == "U" and arrays["config"].shape == ()
    assert not any(array.dtype.hasobject for array in arrays.values())
    config = json.loads(str(arrays["config"]))
    assert config["format"] == "xpann.model" and config["format_version"] == xpann.io.FORMAT_VERSION


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    model = classifier(seed=1)
    path = tmp_path / "model.npz"
    model.save(path)
    old = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(xpann.io.numpy, "savez", broken_savez)
    changed = classifier(seed=2)
    with pytest.raises(OSError, match="disk full"):
        changed.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert path.read_bytes() == old
    monkeypatch.undo()
    assert_weights_equal(xpann.load_model(path).get_weights(), model.get_weights())


def test_an_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xpann.io.numpy, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        classifier().save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_saved_file_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        classifier().save(tmp_path / "model.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode) == 0o644


# ----- files that are not models --------------------------------------------------------------


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        xpann.load_model(tmp_path / "absent.npz")


@pytest.mark.parametrize("kind", ["random bytes", "text", "npy", "empty", "zip"])
def test_a_file_that_is_not_a_model_is_a_value_error(tmp_path, kind):
    path = tmp_path / "thing.npz"
    if kind == "random bytes":
        path.write_bytes(numpy.random.default_rng(0).bytes(300))
    elif kind == "text":
        path.write_text("sepal_length,species\n5.1,setosa\n")
    elif kind == "npy":
        with open(path, "wb") as stream:
            numpy.save(stream, numpy.arange(3.0))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="is not an xpann model file"):
        xpann.load_model(path)


def test_an_npz_without_a_model_config_is_a_value_error(tmp_path):
    numpy.savez(tmp_path / "weights.npz", weight_0=numpy.zeros((4, 3)))
    with pytest.raises(ValueError, match="not an xpann model file.*config"):
        xpann.load_model(tmp_path / "weights.npz")


def test_an_npz_with_a_foreign_config_is_a_value_error(tmp_path):
    numpy.savez(tmp_path / "other.npz", config=numpy.array(json.dumps({"format": "something else"})))
    with pytest.raises(ValueError, match="not an xpann model file"):
        xpann.load_model(tmp_path / "other.npz")
    numpy.savez(tmp_path / "numbers.npz", config=numpy.arange(3))
    with pytest.raises(ValueError, match="not an xpann model file"):
        xpann.load_model(tmp_path / "numbers.npz")


def test_an_npz_with_pickled_objects_is_refused(tmp_path):
    numpy.savez(tmp_path / "pickled.npz", config=numpy.array([{"format": "xpann.model"}], dtype=object))
    with pytest.raises(ValueError, match="not an xpann model file"):
        xpann.load_model(tmp_path / "pickled.npz")


def test_a_newer_format_version_says_to_upgrade(tmp_path):
    classifier().save(tmp_path / "model.npz")
    newer = xpann.io.FORMAT_VERSION + 1

    def bump(config):
        config["format_version"] = newer
        config["xpann_version"] = "99.0"

    rewrite_config(tmp_path / "model.npz", tmp_path / "newer.npz", bump)
    with pytest.raises(ValueError, match=rf"format {newer}.*xpann 99\.0.*Upgrade xpann"):
        xpann.load_model(tmp_path / "newer.npz")


def test_a_damaged_model_file_is_a_value_error(tmp_path):
    classifier().save(tmp_path / "model.npz")
    with numpy.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        second = [name for name in archive.files if name.startswith("tensor:")][1]
        arrays = {name: archive[name] for name in archive.files if name != second}
    numpy.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(ValueError, match="incomplete or damaged"):
        xpann.load_model(tmp_path / "damaged.npz")

    def wrong_width(config):
        config["model"]["layers"][0]["config"]["units"] = 17

    rewrite_config(tmp_path / "model.npz", tmp_path / "mismatch.npz", wrong_width)
    with pytest.raises(ValueError, match="hidden"):
        xpann.load_model(tmp_path / "mismatch.npz")

    def no_model(config):
        config["model"] = "a string"

    rewrite_config(tmp_path / "model.npz", tmp_path / "nomodel.npz", no_model)
    with pytest.raises(ValueError, match="incomplete or damaged"):
        xpann.load_model(tmp_path / "nomodel.npz")


# ----- backends -------------------------------------------------------------------------------


def test_a_model_file_loads_on_the_backend_in_force(backend, tmp_path):
    x, _ = data()
    with xpann.use_backend("numpy"):
        model = classifier()
        model.save(tmp_path / "model.npz")
    loaded = xpann.load_model(tmp_path / "model.npz")
    assert loaded.backend.name == backend.name
    numpy.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=2e-5, atol=1e-6)


def test_a_model_saved_on_one_backend_predicts_alike_on_the_other(tmp_path, cupy_backend):
    x, y = data()

    def save_train_and_load(backend):
        model = classifier(backend=backend, dtype="float64")
        model.fit(x, y, epochs=2, verbose=0)
        path = tmp_path / f"{backend.name}.npz"
        model.save(path)
        other = "cupy" if backend.name == "numpy" else "numpy"
        loaded = xpann.load_model(path, backend=other)
        assert loaded.backend.name == other
        loaded.fit(x, y, epochs=1, verbose=0)
        return [model.predict(x), loaded.predict(x)] + loaded.get_weights()

    assert_backends_agree(save_train_and_load, "float64", rtol=1e-7, atol=1e-9)


# ----- metadata -------------------------------------------------------------------------------


def test_metadata_survives_save_and_load(tmp_path):
    model = classifier()
    assert model.metadata == {}
    model.metadata = {
        "classes": ["setosa", "versicolor", "virginica"],
        "scaler": {"mean": [5.8, 3.0, 3.7, 1.2], "scale": [0.8, 0.4, 1.7, 0.7]},
        "target": "species", "rows": 150, "ok": True, "missing": None,
    }
    model.save(tmp_path / "model.npz")
    assert xpann.load_model(tmp_path / "model.npz").metadata == model.metadata
    classifier().save(tmp_path / "plain.npz")
    assert xpann.load_model(tmp_path / "plain.npz").metadata == {}


def test_metadata_that_is_not_json_is_a_value_error_and_writes_nothing(tmp_path):
    model = classifier()
    model.metadata = {"mean": numpy.float32(1.5)}
    with pytest.raises(ValueError, match="metadata"):
        model.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []
