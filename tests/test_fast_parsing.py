"""The fast paths of reading and parsing give what the lenient per-cell path gives: the same
values (bit for bit, the sign of zero included), the same cells that are not numbers, the same
missing cells, kinds, warnings and errors, on tricky columns."""

import io
import json
import random
import warnings

import numpy
import pandas
import pytest

from xpann.preprocessing import TabularPreprocessor, TargetEncoder, id_columns
from xpann.preprocessing._cells import _GROUPED_NUMBER, _as_text, _category, _label_key, _parse_numbers
from xpann.preprocessing._columns import _kind
from xpann.tabular._csv import read_table


def reference_parse_numbers(series):
    """The lenient per-cell path as it was: every filled cell through pandas' text methods."""
    values = numpy.full(len(series), numpy.nan)
    bad = numpy.zeros(len(series), dtype=bool)
    present = series.notna().to_numpy()
    text = series[present].map(str).str.strip()
    numbers = pandas.to_numeric(text, errors="coerce").astype(numpy.float64)
    failed = numbers.isna() & (text.str.lower() != "nan") & (text != "")
    if failed.any():
        grouped = failed & text.str.fullmatch(_GROUPED_NUMBER.pattern)
        if grouped.any():
            numbers[grouped] = pandas.to_numeric(text[grouped].str.replace(",", "", regex=False),
                                                 errors="coerce").astype(numpy.float64)
            failed &= ~grouped
    values[present] = numbers.to_numpy(dtype=numpy.float64)
    bad[present] = failed.to_numpy(dtype=bool)
    return values, bad


def same_bits(a, b):
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    return a.shape == b.shape and numpy.array_equal(numpy.isnan(a), numpy.isnan(b)) \
        and numpy.array_equal(numpy.where(numpy.isnan(a), 0, a).view(numpy.int64),
                              numpy.where(numpy.isnan(b), 0, b).view(numpy.int64))


def check_parse(cells):
    series = pandas.Series(cells, dtype=object)
    values, bad = _parse_numbers(series)
    expected_values, expected_bad = reference_parse_numbers(series)
    assert same_bits(values, expected_values), (list(cells), values, expected_values)
    assert numpy.array_equal(bad, expected_bad), (list(cells), bad, expected_bad)


TRICKY = {
    "spaces": [" 12", "3.5 ", "  7  ", "\t8", "9\t", numpy.nan, "-4"],
    "grouped": ["1,699.0", "12,345", "1,234,567.25", "-1,000", "1,23", "12,3456", "7"],
    "nan words": ["NaN", "nan", "NAN", "Nan", " nan ", "1.5", numpy.nan, "", "  "],
    "stray few": [str(i) for i in range(40)] + ["n/a"],
    "stray many": [str(i) for i in range(10)] + ["n/a", "none", "NA", "null", "None"],
    "ints": ["1", "2", "-0", "007", "+5", "42"],
    "ints with a float": ["1", "2", "-0", "0.5"],
    "ints and text": ["1", "-0", "x"],
    "negative zero": ["-0", "-0.0", "0", "+0"],
    "long": ["12345678901234567890", "0000000000000000001", "1" * 16, "9007199254740993", "1"],
    "long with a float": ["12345678901234567", "0.1", "00000000000000000012345"],
    "exponents": ["1e5", "1E-3", "-2.5e+10", "1e", "e5", ".5", "5.", "-.5", "+.5e1"],
    "infinities": ["inf", "-Inf", "INFINITY", "+inf", "infinity", " inf", "1"],
    "huge": ["1e39", "3.5e38", "-1e308", "1e309", "2"],
    "tiny": ["1e-320", "0.00000000000000000000000123", "4.9e-324"],
    "dates": ["2024-01-05", "2024-02-29T12:30", "2023-13-01", numpy.nan],
    "booleans": ["true", "False", "TRUE", "no"],
    "unicode": ["١٢٣", "１２", "12\u00a0", "\u20003", "½"],
    "currency": ["$1,200", "12 €", "1200"],
    "decimals": ["0.1", "0.2", "0.30000000000000004", "123456.789012345", "-99.999", "1.0000000000000002"],
    "words": ["C12345", "Oslo", "x1", "1x", "1.2.3", "--1", "+-1", "0x10", "1_000"],
    "empty": [numpy.nan, numpy.nan],
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_parse_numbers_matches_the_lenient_path(name):
    check_parse(TRICKY[name])


def test_parse_numbers_matches_on_random_cells():
    rng = random.Random(7)
    pieces = ["0", "1", "9", "00", "123", "4567", ".", ",", "-", "+", "e", "E", " ", "nan", "NaN", "inf", "x",
              "12345678", "000000000", "1,234"]
    for _ in range(300):
        cells = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 12))]
        check_parse(cells)
        check_parse([c for c in cells if c.strip()] + ["1", "2"])  # with whole numbers beside them


def test_parse_numbers_matches_on_random_decimals():
    rng = numpy.random.default_rng(3)
    for digits in (1, 3, 6, 12, 15, 16, 17, 20):
        values = rng.normal(0, 10.0 ** rng.integers(-8, 12), 500)
        cells = [numpy.format_float_positional(v, precision=digits, unique=False, trim="-") for v in values]
        check_parse(cells)
        check_parse([c.lstrip("-").split(".")[0] for c in cells])  # whole numbers only


def test_as_text_and_label_keys_match_the_per_cell_functions():
    series = pandas.Series(["a", "TRUE", "false", "fAlSe", numpy.nan, " true", "True ", "1", "1.0", "ﬁ"], dtype=object)
    same = pandas.testing.assert_series_equal
    same(_as_text(series), series.map(_category, na_action="ignore"), check_dtype=False)
    mixed = pandas.Series([1.0, "x", True, numpy.nan], dtype=object)
    same(_as_text(mixed), mixed.map(_category, na_action="ignore"), check_dtype=False)
    assert [_label_key(v) for v in ["1", " 1.0 ", "x ", 2.0, "2"]] == ["1", "1", "x", "2", "2"]


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_kind_matches_the_kind_without_the_early_look(name, monkeypatch):
    series = pandas.Series(TRICKY[name] * 30, dtype=object)
    kind, parsed = _kind(series)
    import xpann.preprocessing._columns as columns

    monkeypatch.setattr(columns, "_too_many_strays", lambda series: False)
    expected_kind, expected = _kind(series)
    assert kind == expected_kind
    if expected is not None and kind == "numeric":
        assert same_bits(parsed[0], expected[0]) and numpy.array_equal(parsed[1], expected[1])


def test_a_text_column_with_strays_late_is_still_parsed_in_full():
    cells = ["x"] * 40 + [str(i) for i in range(2000)]  # text first, then numbers: 2% strays
    series = pandas.Series(cells, dtype=object)
    assert _kind(series)[0] == "numeric"


# ----- read_table(numbers=True) against the text reading ---------------------------------------


def tricky_csv(rows=200, separator=",", seed=0):
    rng = numpy.random.default_rng(seed)
    lines = []
    header = ["row_id", "plain", "whole_gaps", "spaces", "grouped", "nan_words", "few_strays", "many_strays",
              "when", "flag", "city", "labels", "big", "mixed_words", "negative_zero"]
    for i in range(rows):
        plain = f"{rng.normal(100, 20):.3f}"
        whole = "" if i % 17 == 0 else str(int(rng.integers(0, 50)))
        spaces = f" {rng.integers(0, 9)} " if i % 3 else f"{rng.normal():.2f}"
        grouped = f"{int(rng.integers(1000, 99999)):,}.5" if separator == "," else str(i)
        nan_word = ["NaN", "nan", "", "  ", "1.5", "NAN"][i % 6] if i < 12 else f"{i}.25"
        few = "n/a" if i == 50 else str(i)
        many = "none" if i % 4 == 0 else str(i)
        when = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"
        flag = ["true", "False"][i % 2]
        city = ["Oslo", "Lima", "NA", "null", "None"][i % 5]
        label = ["1", "2", "1.0"][i % 3]
        big = "1e39" if i == 7 else str(i)
        mixed = ["7", "007", "1.50"][i % 3]
        zero = "-0" if i == 3 else str(i % 5)
        row = [str(i + 1), plain, whole, spaces, grouped, nan_word, few, many, when, flag, city, label, big, mixed, zero]
        if separator == ";":
            row[1] = row[1].replace(".", ",")
            quoted = row
        else:
            quoted = [f'"{c}"' if "," in c else c for c in row]
        lines.append(separator.join(quoted))
    return (separator.join(header) + "\n" + "\n".join(lines) + "\n").encode()


def read_both(tmp_path, content, **options):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    return read_table(path, numbers=True, **options), read_table(path)


def outcome(frame, columns=None, **fit):
    """Everything the preprocessing gives: IDs, the fitted configuration, the matrix, warnings, or the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ids = id_columns(frame, columns)
            preprocessor = TabularPreprocessor().fit(frame, columns, ids=ids, **fit)
            x = preprocessor.transform(frame, warn_truncated=False)
            result = (ids, json.dumps(preprocessor.to_config(), sort_keys=True), x.tobytes())
        except ValueError as error:
            result = ("error", str(error))
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("separator", [",", ";"])
def test_typed_reading_gives_the_same_frame_values_and_preprocessing(tmp_path, separator):
    typed, text = read_both(tmp_path, tricky_csv(separator=separator))
    assert typed.notes == text.notes and typed.digest == text.digest and typed.separator == text.separator
    assert typed.raw.equals(text.raw)
    assert list(typed.frame.columns) == list(text.frame.columns)
    assert typed.frame.index.equals(text.frame.index)
    floats = []
    for name in text.frame.columns:
        column, cells = typed.frame[name], text.frame[name]
        if column.dtype == object:
            assert column.equals(cells), name
            continue
        floats.append(name)
        values, bad = _parse_numbers(cells)
        assert not bad.any() and same_bits(column.to_numpy(), values), name
        assert numpy.array_equal(column.isna().to_numpy(), cells.isna().to_numpy()), name
    assert {"row_id", "plain", "whole_gaps", "spaces", "negative_zero", "mixed_words"} <= set(floats)
    assert not {"nan_words", "few_strays", "many_strays", "when", "flag", "city", "big"} & set(floats)
    usable = [c for c in text.frame.columns if c not in ("many_strays", "big", "labels")]
    assert outcome(typed.frame, usable) == outcome(text.frame, usable)
    # more than 5% stray text: categories; a value beyond float32: the error naming it
    for name in ("many_strays", "big"):
        assert outcome(typed.frame, [name, "plain"]) == outcome(text.frame, [name, "plain"])
    assert outcome(typed.frame, ["big", "plain"])[0][0] == "error"
    assert "1e39" in outcome(typed.frame, ["big", "plain"])[0][1]


def test_new_rows_with_stray_text_give_the_same_warnings_and_errors(tmp_path):
    typed, text = read_both(tmp_path, tricky_csv())
    columns = ["plain", "whole_gaps", "spaces", "city"]
    fitted = TabularPreprocessor().fit(typed.frame, columns, ids={})
    assert fitted.to_config() == TabularPreprocessor().fit(text.frame, columns, ids={}).to_config()
    for share in (0.1, 0.7):  # read as missing with a warning; an error
        content = tricky_csv(seed=1).decode().splitlines()
        lines = [content[0]] + [line.replace(line.split(",")[1], "oops", 1) if i < share * 200 else line
                                for i, line in enumerate(content[1:])]
        (tmp_path / "new.csv").write_text("\n".join(lines) + "\n")
        results = []
        for numbers in (True, False):
            frame = read_table(tmp_path / "new.csv", numbers=numbers).frame
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = fitted.transform(frame).tobytes()
                except ValueError as error:
                    result = str(error)
            results.append((result, [str(w.message) for w in caught]))
        assert results[0] == results[1]
        assert (isinstance(results[0][0], str) and "oops" in results[0][0]) == (share > 0.5)
        assert bool(results[0][1]) == (share < 0.5)


def test_a_target_named_in_text_keeps_its_labels_as_written(tmp_path):
    typed, text = read_both(tmp_path, tricky_csv(), text=["labels", "mixed_words"])
    for name in ("labels", "mixed_words"):
        assert typed.frame[name].equals(text.frame[name])
    encoded = TargetEncoder("classification", "labels").fit(typed.frame["labels"])
    assert encoded.classes == TargetEncoder("classification", "labels").fit(text.frame["labels"]).classes == ["1", "2"]
    # unnamed, a column of numbers written as 1 and 1.0 becomes float64, and its labels numbers
    assert read_table(tmp_path / "data.csv", numbers=True).frame["labels"].dtype == numpy.float64


def test_whole_numbers_with_long_digit_runs_stay_text(tmp_path):
    content = b"id,x\n1,00000000000000000012\n2,\n3,5\n"
    typed, text = read_both(tmp_path, content)
    values, bad = _parse_numbers(text.frame["x"])
    assert same_bits(typed.frame["x"].to_numpy(dtype=float), values) and values[0] == 12


def test_default_reading_is_text_and_raw_is_exact(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n 1 ,x\nNaN,\n")
    table = read_table(path)
    assert table.frame.dtypes.tolist() == [object, object]
    assert table.raw["a"].tolist() == [" 1 ", "NaN"] and table.raw["b"].tolist() == ["x", ""]
    typed = read_table(path, numbers=True)
    assert typed.frame["a"].dtype == numpy.float64 and typed.raw.equals(table.raw)


def test_typed_reading_from_standard_input(monkeypatch):
    import sys

    content = tricky_csv(30)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))
    typed = read_table("-", numbers=True)
    assert typed.path == "standard input" and typed.frame["plain"].dtype == numpy.float64
    assert len(typed.raw) == 30


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_parse_numbers_of_repeated_cells_matches_the_lenient_path(name):
    check_parse(TRICKY[name] * 200)  # long columns of few distinct texts: each parsed once
    check_parse(TRICKY[name] * 200 + [f"{i}.5" for i in range(3000)])


@pytest.mark.parametrize("content", [b"a,b\n", b"a,b\n1,2,3\n4,5,6\n", b"a;b\n1,5;x\n2;y\n", b"a,b\n1,2\n3\n",
                                     b"a,b\n1,\"2\n3\"\n", b",x\n1,2\n2,3\n", b"a,b\n\n1,2\n\n"])
def test_typed_reading_fails_and_reads_odd_files_as_the_text_reading(tmp_path, content):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    results = []
    for numbers in (True, False):
        try:
            table = read_table(path, numbers=numbers)
            results.append((table.raw.to_dict(), table.frame.astype(object).where(table.frame.notna(), None)
                            .map(lambda v: float(v) if isinstance(v, float) else v).to_dict(), table.notes))
        except ValueError as error:
            results.append(str(error))
    if isinstance(results[1], str):
        assert results[0] == results[1]
    else:
        assert results[0][0] == results[1][0] and results[0][2] == results[1][2]
        frame = read_table(path, numbers=True).frame
        for name in frame.columns:
            if frame[name].dtype == numpy.float64:
                values, bad = _parse_numbers(read_table(path).frame[name])
                assert same_bits(frame[name].to_numpy(), values) and not bad.any()
            else:
                assert frame[name].equals(read_table(path).frame[name])


def test_true_false_columns_with_gaps_stay_the_text_as_written(tmp_path):
    typed, text = read_both(tmp_path, b"a,b,c\ntrue,1,TRUE\n,2,False\nFalse,3,\n")
    for name in ("a", "c"):
        assert typed.frame[name].equals(text.frame[name])
        assert typed.frame[name].dropna().map(type).eq(str).all()
    assert outcome(typed.frame) == outcome(text.frame)
