"""``xpann diagnose``: the per-layer table, --compare side by side, --json and --plot, and the
user's mistakes as one clear message."""

import json
import sys

import pytest
from click.testing import CliRunner

from xpann_cli.main import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return CliRunner().invoke(cli, ["diagnose", *args])


def test_a_single_set_up_prints_the_per_layer_table_and_writes_json(tmp_path):
    path = tmp_path / "records.json"
    result = run("--depth", "4", "--width", "8", "--epochs", "3", "--json", str(path))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sigmoid + glorot_uniform" in out
    for name in ("dense_1", "dense_5", "|grad| ep 1", "|grad| ep 3", "dead", "saturated", "update/weight"):
        assert name in out
    document = json.loads(path.read_text())
    (setup,) = document["setups"]
    assert setup["activation"] == "sigmoid" and setup["init"] == "glorot_uniform"
    assert [record["epoch"] for record in setup["records"]] == [0, 1, 2]
    assert [layer["name"] for layer in setup["records"][0]["layers"]] == [f"dense_{i}" for i in range(1, 6)]
    assert len(setup["step_grad_norms"]["step"]) == 3 * 18  # 569 rows in batches of 32


def test_compare_shows_which_set_up_vanishes_explodes_and_learns(tmp_path):
    picture, records = tmp_path / "g.png", tmp_path / "g.json"
    result = run("--compare", "--epochs", "3", "--plot", str(picture), "--json", str(records))
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("sigmoid/glorot", "tanh/glorot", "relu/he", "leaky_relu/he", "relu/he x2"):
        assert label in out
    assert "Vanishing gradients" in out and "exploding gradients" in out
    verdict = next(line for line in out.splitlines() if line.startswith("verdict"))
    assert verdict.split()[1:] == ["does", "not", "learn", "learns", "learns", "learns", "explodes"]
    assert picture.read_bytes()[:8] == PNG_MAGIC
    setups = json.loads(records.read_text())["setups"]
    assert [s["verdict"].split(" (")[0] for s in setups] == ["does not learn", "learns", "learns", "learns",
                                                              "explodes"]
    first = setups[0]["step_grad_norms"]["layers"]
    assert first["dense_1"][0] < 1e-3 * first["dense_11"][0]
    assert setups[4]["loss"][0] is None  # NaN is written as null


def test_compare_takes_its_own_set_ups_on_another_data_set():
    result = run("--compare", "--dataset", "iris", "--depth", "3", "--epochs", "2",
                 "--setup", "tanh:glorot_normal", "--setup", "relu:he_uniform:0.5")
    assert result.exit_code == 0, result.output
    assert "tanh/glorot_n" in result.output and "relu/he_u x0.5" in result.output
    assert "sigmoid/glorot" not in result.output


def test_a_csv_file_with_a_target_column(tmp_path):
    path = tmp_path / "data.csv"
    rows = ["a,b,colour,price"] + [f"{i % 7},{(i * 3) % 11},{'red' if i % 2 else 'blue'},{i * 1.5 + 0.25}"
                                   for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    result = run(str(path), "--target", "price", "--depth", "2", "--epochs", "2", "--activation", "relu",
                 "--init", "he_normal", "--optimizer", "adam", "--lr", "0.01")
    assert result.exit_code == 0, result.output
    assert "regression" in result.output and "r2" in result.output


@pytest.mark.parametrize("args, words", [
    (["--setup", "relu:he_normal"], "add --compare"),
    (["--compare", "--setup", "relu"], "ACTIVATION:INIT"),
    (["--compare", "--setup", "relu:nope"], "nope"),
    (["--activation", "sigmoidal"], "sigmoidal"),
    (["--init", "zeros", "--init-scale", "2"], "--init-scale"),
    (["--dataset", "titanic"], "titanic"),
    (["--plot", "g.nope"], ".nope"),
    (["missing.csv", "--target", "y"], "missing.csv"),
])
def test_mistakes_are_one_message_and_a_non_zero_exit(args, words):
    result = run("--epochs", "1", "--depth", "2", *args)
    assert result.exit_code != 0
    assert words in result.output
    assert "Traceback" not in result.output


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("--epochs", "1", "--depth", "2", "--plot", str(tmp_path / "g.png"))
    assert result.exit_code == 1
    assert "pip install 'xpann[plot]'" in result.output


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_a_learning_rate_that_is_not_finite_and_positive_names_lr(value):
    result = CliRunner().invoke(cli, ["diagnose", "--lr", value])
    assert result.exit_code == 2
    assert "--lr" in result.output
