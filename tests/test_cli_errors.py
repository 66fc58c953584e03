"""Every user mistake is one message naming the file, column or value at fault, and a non-zero
exit; no traceback reaches the user unless ``xpann --debug`` asks for it."""

import json
import os
import subprocess
import sys
import traceback

import numpy
import pandas
import pytest
from click.testing import CliRunner

import xpann
from xpann_cli.main import cli

from cli_runner import fails

IRIS = xpann.datasets.csv_path("iris")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mistakes")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "blank.csv").write_text("\n\n")
    (folder / "header.csv").write_text("a,b,y\n")
    (folder / "ragged.csv").write_text("a,b,y\n1,2,x\n3,4,5,6\n")
    (folder / "latin1.csv").write_bytes("ville,y\nS\xe8te,1\n".encode("latin-1"))
    (folder / "folder.csv").mkdir()
    frame = pandas.DataFrame({"a": numpy.arange(40) % 7 * 1.5, "b": ["x", "y"] * 20, "y": ["p", "q"] * 20})
    frame.to_csv(folder / "good.csv", index=False)
    bad_value = frame.astype({"a": object})
    bad_value.loc[3, "a"] = "lots"
    bad_value.to_csv(folder / "bad_value.csv", index=False)
    frame.drop(columns=["b"]).to_csv(folder / "no_b.csv", index=False)
    unknown_label = frame.copy()
    unknown_label.loc[0, "y"] = "r"
    unknown_label.to_csv(folder / "unknown_label.csv", index=False)
    model = folder / "model.npz"
    result = CliRunner().invoke(cli, ["train", str(folder / "good.csv"), "--target", "y", "--epochs", 1,
                                      "--out", str(model)])
    assert result.exit_code == 0, result.output
    return folder, model


# ----- data files -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("missing.csv", "No such file: {path}"),
    ("empty.csv", "{path} is empty"),
    ("blank.csv", "{path} is empty"),
    ("header.csv", "{path} has a header but no data rows"),
    ("ragged.csv", "{path} is not a well-formed CSV file: Expected 3 fields in line 3, saw 4"),
    ("latin1.csv", "{path} is not UTF-8 text"),
    ("folder.csv", "{path} is a folder, not a CSV file"),
])
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_bad_csv_files(files, name, message, command):
    folder, model = files
    path = folder / name
    args = {"train": ["train", path, "--target", "y"], "evaluate": ["evaluate", model, path, "--target", "y"],
            "predict": ["predict", model, path, "--out", "predictions.csv"]}[command]
    assert message.format(path=path) in fails(*args, culprit=path, exit_code=1).error


def test_a_target_that_is_not_a_column_lists_the_columns(files):
    folder, model = files
    output = fails("train", folder / "good.csv", "--target", "Y", culprit=("'Y'", folder / "good.csv")).error
    assert "Target column 'Y' is not in" in output
    assert "its columns are: a, b, y" in output and "Did you mean 'y'?" in output
    output = fails("evaluate", model, folder / "good.csv", "--target", "nope",
                   culprit=("'nope'", folder / "good.csv")).error
    assert "'nope' is not in" in output and "a, b, y" in output


def test_a_csv_without_target_asks_for_one(files):
    folder, _ = files
    output = fails("train", folder / "good.csv", culprit=(folder / "good.csv", "--target COLUMN"), exit_code=2).error
    assert "a, b, y" in output


def test_csv_and_dataset_together(files):
    folder, _ = files
    assert "not both" in fails("train", folder / "good.csv", "--dataset", "iris", culprit="--dataset", exit_code=2).error


def test_unknown_dataset():
    output = fails("train", "--dataset", "irs", culprit="'irs'").error
    assert "Unknown data set 'irs'" in output and "iris" in output


def test_a_text_target_cannot_be_regression(files):
    folder, _ = files
    output = fails("train", folder / "good.csv", "--target", "y", "--task", "regression", "--epochs", 1,
                   culprit=(folder / "good.csv", "'y'")).error
    assert "'y' holds text ('p'" in output


def test_a_single_class_target(tmp_path):
    pandas.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "y": ["p"] * 5}).to_csv(tmp_path / "one.csv", index=False)
    assert "only one class ('p')" in fails("train", tmp_path / "one.csv", "--target", "y",
                                           culprit=(tmp_path / "one.csv", "'y'")).error


# ----- option values --------------------------------------------------------------------------


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "Invalid value for '--epochs'"),
    ("--epochs", "ten", "Invalid value for '--epochs'"),
    ("--batch-size", "0", "Invalid value for '--batch-size'"),
    ("--lr", "-1", "Invalid value for '--lr'"),
    ("--val-split", "1", "Invalid value for '--val-split'"),
    ("--hidden", "64,x", "'64,x' is not a comma-separated list of layer widths"),
    ("--hidden", "64,0", "'64,0' is not a comma-separated list"),
    ("--activation", "relux", "Unknown activation 'relux'; valid names are"),
    ("--init", "he", "Unknown initializer 'he'; valid names are"),
    ("--optimizer", "adamm", "Unknown optimizer 'adamm'; valid names are"),
    ("--backend", "tpu", "Invalid value for '--backend'"),
    ("--task", "clustering", "Invalid value for '--task'"),
    ("--seed", "-1", "Invalid value for '--seed'"),
])
def test_bad_option_values(option, value, message):
    output = fails("train", "--dataset", "iris", option, value, culprit=(option, value), exit_code=2).error
    assert message in output


def test_patience_needs_validation():
    assert "--val-split > 0" in fails("train", "--dataset", "iris", "--patience", "2", "--val-split", "0",
                                      culprit="'--patience'", exit_code=2).error


def test_unwritable_outputs(files, tmp_path):
    folder, model = files
    missing = tmp_path / "no" / "such" / "m.npz"
    assert f"the folder {missing.parent} does not exist" in fails("train", "--dataset", "iris", "--out", missing,
                                                                  culprit=missing).error
    assert "it is a folder" in fails("train", "--dataset", "iris", "--out", tmp_path, culprit=tmp_path).error
    out = tmp_path / "no" / "p.csv"
    assert "Cannot write the predictions" in fails("predict", model, folder / "good.csv", "--out", out,
                                                   culprit=out).error
    plot = tmp_path / "c.foo"
    assert "cannot write .foo files" in fails("train", "--dataset", "iris", "--plot", plot,
                                              "--out", tmp_path / "m.npz", culprit=("'--plot'", plot), exit_code=2).error


# ----- model files ----------------------------------------------------------------------------


def rewrite_config(source, target, change):
    arrays = dict(numpy.load(source))
    config = json.loads(str(arrays["config"]))
    change(config)
    arrays["config"] = numpy.array(json.dumps(config))
    with open(target, "wb") as stream:
        numpy.savez(stream, **arrays)


@pytest.fixture(scope="module")
def bad_models(files):
    folder, model = files
    models = {"missing": folder / "none.npz", "folder": folder / "folder.csv", "a CSV": folder / "good.csv"}
    models["truncated"] = folder / "truncated.npz"
    models["truncated"].write_bytes(model.read_bytes()[:300])
    models["plain"] = folder / "plain.npz"
    xpann.Sequential([xpann.layers.Dense(2)], input_dim=3).save(models["plain"])
    models["newer format"] = folder / "newer.npz"
    rewrite_config(model, models["newer format"], lambda c: c.update(format_version=99))
    models["newer preprocessing"] = folder / "newer_tabular.npz"
    rewrite_config(model, models["newer preprocessing"], lambda c: c["metadata"]["tabular"].update(version=9))
    models["damaged preprocessing"] = folder / "damaged.npz"
    rewrite_config(model, models["damaged preprocessing"],
                   lambda c: c["metadata"]["tabular"]["features"].pop("columns"))
    return folder, models


@pytest.mark.parametrize("kind, message", [
    ("missing", "No model file at {path}"),
    ("folder", "{path} is a folder, not a model file"),
    ("a CSV", "{path} is not an xpann model file"),
    ("truncated", "{path} is not an xpann model file"),
    ("plain", "{path}: The model holds no tabular preprocessing"),
    ("newer format", "{path} was written in model format 99"),
    ("newer preprocessing", "{path}: The stored tabular preprocessing has version 9"),
    ("damaged preprocessing", "{path}: The stored feature preprocessing is damaged"),
])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_bad_model_files(bad_models, kind, message, command):
    folder, models = bad_models
    path = models[kind]
    args = [command, path, folder / "good.csv"] + (["--target", "y"] if command == "evaluate" else
                                                    ["--out", "predictions.csv"])
    output = fails(*args, culprit=path, exit_code=1).error
    assert message.format(path=path) in output


# ----- rows that do not fit the model ---------------------------------------------------------


def test_a_missing_feature_column_is_named(files):
    folder, model = files
    for args in (["predict", model, folder / "no_b.csv"], ["evaluate", model, folder / "no_b.csv"]):
        output = fails(*args, culprit=(folder / "no_b.csv", "'b'")).error
        assert "Missing feature column 'b'" in output


def test_text_in_a_numeric_column_names_the_line(files, tmp_path):
    folder, model = files
    result = CliRunner().invoke(cli, ["predict", str(model), str(folder / "bad_value.csv"), "--out",
                                      str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output  # one odd cell in 40 is read as missing, as in training
    assert "Column 'a' holds numbers except 'lots' (1 cell(s), first on line 5); read as missing" in result.stderr
    mostly_text = pandas.DataFrame({"a": ["lots", "few", "3"], "b": ["x", "y", "x"]})
    mostly_text.to_csv(tmp_path / "text.csv", index=False)
    output = fails("predict", model, tmp_path / "text.csv", culprit=(tmp_path / "text.csv", "'a'", "'lots'")).error
    assert "text.csv: Column 'a' should hold numbers but holds 'lots' (line 2)" in output


def test_a_label_unseen_in_training(files):
    folder, model = files
    output = fails("evaluate", model, folder / "unknown_label.csv", culprit=(folder / "unknown_label.csv", "'r'")).error
    assert "never saw in training: 'r' in 1 of 40 rows (line 2)" in output


# ----- --debug --------------------------------------------------------------------------------


def test_debug_shows_the_exception(files):
    folder, _ = files
    result = CliRunner().invoke(cli, ["--debug", "train", str(folder / "missing.csv"), "--target", "y"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError) and "No such file" in str(result.exception)


# ----- an unexpected exception: one Error line; the traceback only with --debug -------------------


PLANTED = "the planted failure"
UNEXPECTED = f"Error: unexpected RuntimeError: {PLANTED} (run with xpann --debug ... for the traceback)"


def _planted_failure(*args, **kwargs):
    raise RuntimeError(PLANTED)


def test_an_unexpected_exception_is_one_error_line(monkeypatch, tmp_path):
    monkeypatch.setattr(xpann.tabular.TabularModel, "fit", _planted_failure)
    result = fails("train", "--dataset", "iris", "--epochs", 1, "--out", tmp_path / "m.npz",
                   culprit=("unexpected RuntimeError", PLANTED, "xpann --debug"), exit_code=1)
    assert result.error == UNEXPECTED
    assert not (tmp_path / "m.npz").exists()


def test_debug_lets_an_unexpected_exception_through_with_its_traceback(monkeypatch, tmp_path):
    monkeypatch.setattr(xpann.tabular.TabularModel, "fit", _planted_failure)
    result = CliRunner().invoke(cli, ["--debug", "train", "--dataset", "iris", "--epochs", 1,
                                      "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 1
    assert type(result.exception) is RuntimeError and str(result.exception) == PLANTED
    shown = "".join(traceback.format_exception(*result.exc_info))
    assert shown.startswith("Traceback") and "_planted_failure" in shown
    assert "Error:" not in result.output
    assert not (tmp_path / "m.npz").exists()


PLANTING = ("import sys, xpann.tabular\n"
            "def planted(*args, **kwargs):\n"
            f"    raise RuntimeError({PLANTED!r})\n"
            "xpann.tabular.TabularModel.fit = planted\n"
            "from xpann_cli.main import cli\n"
            "cli(sys.argv[1:], prog_name='xpann')\n")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_in_a_real_process(debug, tmp_path):
    arguments = ["--debug"] * debug + ["train", "--dataset", "iris", "--epochs", "1", "--out", "m.npz"]
    result = subprocess.run([sys.executable, "-c", PLANTING, *arguments], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "XPANN_BACKEND": "numpy"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (tmp_path / "m.npz").exists()
    if debug:
        assert "Traceback (most recent call last):" in result.stderr
        assert f"RuntimeError: {PLANTED}" in result.stderr
        assert not [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    else:
        assert "Traceback" not in result.stderr + result.stdout
        assert result.stderr.strip().splitlines() == [UNEXPECTED]


# ----- outputs that would destroy inputs --------------------------------------------------------


def test_out_never_overwrites_the_inputs(files, tmp_path):
    folder, model = files
    data = tmp_path / "data.csv"
    data.write_bytes((folder / "good.csv").read_bytes())
    before = data.read_bytes()
    assert "is the training data" in fails("train", data, "--target", "y", "--out", data, culprit=data).error
    link = tmp_path / "link.npz"
    link.symlink_to(data)
    assert "is the training data" in fails("train", data, "--target", "y", "--out", link, culprit=link).error
    assert "must end in .npz" in fails("train", data, "--target", "y", "--out", tmp_path / "model.csv",
                                       culprit=tmp_path / "model.csv").error
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    assert "already exists and is not an xpann model; refusing to overwrite it" in \
        fails("train", data, "--target", "y", "--out", notes, culprit=notes).error
    assert notes.read_text() == "my notes" and data.read_bytes() == before

    copy = tmp_path / "model.npz"
    copy.write_bytes(model.read_bytes())
    assert "is the model file" in fails("predict", copy, data, "--out", copy, culprit=copy).error
    assert "is the data file" in fails("predict", copy, data, "--out", data, culprit=data).error
    assert "is an xpann model file; refusing to overwrite it" in \
        fails("predict", copy, data, "--out", model, culprit=model).error
    assert data.read_bytes() == before and copy.read_bytes() == model.read_bytes()
    picture = tmp_path / "picture.png"
    picture.symlink_to(data)
    if _has_matplotlib():
        assert "--plot " in fails("train", data, "--target", "y", "--plot", picture, "--out", copy,
                                  culprit=picture).error
    assert data.read_bytes() == before


@pytest.mark.skipif(not os.path.exists("/dev/full") or sys.platform != "linux", reason="needs Linux's /dev/full")
def test_an_endless_device_as_out_is_one_message_naming_it(files, tmp_path):
    folder, model = files
    capped = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"  # 1.5 GiB
    program = capped + "import sys\nfrom xpann_cli.main import cli\ncli(sys.argv[1:], prog_name='xpann')\n"
    environment = {**os.environ, "XPANN_BACKEND": "numpy", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", program, "predict", str(model), str(folder / "good.csv"),
                             "--out", "/dev/full"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert result.returncode == 1 and "Traceback" not in output and not list(tmp_path.iterdir()), output
    assert len(errors) == 1 and "/dev/full" in errors[0], output


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_model_may_replace_an_older_model(files, tmp_path):
    folder, model = files
    out = tmp_path / "m.npz"
    out.write_bytes(model.read_bytes())
    result = CliRunner().invoke(cli, ["train", str(folder / "good.csv"), "--target", "y", "--epochs", 1,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output


# ----- option values that Click would let through -------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_a_learning_rate_must_be_finite_and_positive(value):
    output = fails("train", "--dataset", "iris", "--lr", value, culprit=("'--lr'", value), exit_code=2).error
    assert "Invalid value for '--lr'" in output and "finite number > 0" in output


def test_target_without_a_csv_file():
    output = fails("train", "--target", "price", culprit="--target", exit_code=2).error
    assert "--target needs a CSV file (xpann train DATA.csv --target COLUMN)" in output


def test_evaluate_and_predict_need_data(files):
    _, model = files
    assert "Give a CSV file (DATA.csv) or a bundled data set (--dataset NAME)" in \
        fails("predict", model, culprit="DATA.csv", exit_code=2).error
    assert "not both" in fails("evaluate", model, IRIS, "--dataset", "iris", culprit="--dataset", exit_code=2).error


def test_two_rows_cannot_be_split_and_the_message_says_why(tmp_path):
    (tmp_path / "two.csv").write_text("a,b,target\n1,2,x\n3,4,y\n")
    output = fails("train", tmp_path / "two.csv", "--target", "target", "--val-split", "0.5",
                   culprit=(tmp_path / "two.csv", "--val-split")).error
    assert "each of the 2 classes has a single row, which must stay in training" in output
    assert "use --val-split 0 for no validation" in output
