"""Reading and writing CSV files for the commands, with one clear message per kind of mistake."""

import csv
import difflib
import hashlib
import os
import sys
import zipfile

import click

import xpann
from xpann.io import atomic_write

ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark spreadsheets write


def dataset_path(name):
    """The bundled CSV for data set ``name``; an unknown name lists the bundled ones."""
    names = xpann.datasets.names()
    if name not in names:
        raise ValueError(f"Unknown data set {name!r}; the bundled data sets are {', '.join(names)}.")
    return xpann.datasets.csv_path(name)


MISSING = ("", "NaN", "nan")  # the only cells read as missing (and cells of spaces only)
MISSING_HELP = ("Missing values: empty cells (or spaces only) and the words NaN/nan; None, NA, N/A and null "
                "are ordinary text. Comma-, semicolon- and tab-separated files are read.")
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
SNIFF_BYTES = 1 << 16


class CsvFile:
    """A CSV file as read: ``frame`` (every cell as text, NaN where missing, indexed by line
    number 2, 3, ...), ``raw`` (the cells exactly as in the file), ``separator``, ``notes`` (what
    reading it involved, in words) and ``digest`` (SHA-256 of the bytes)."""

    def __init__(self, path, frame, raw, separator, notes, digest):
        self.path, self.frame, self.raw = path, frame, raw
        self.separator, self.notes, self.digest = separator, notes, digest


def _separator(path):
    """The separator that splits the first lines into the same number (> 1) of fields: a comma
    when it does, else a semicolon, tab or bar (the one giving the most fields)."""
    with open(path, "rb") as stream:
        sample = stream.read(SNIFF_BYTES).decode(ENCODING, errors="replace")
    lines = sample.splitlines()
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()][:50]
    best, widths = ",", 1
    for separator in SEPARATORS:
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=separator)}
        except csv.Error:
            continue
        if len(counts) == 1 and counts.pop() > 1:
            width = len(next(csv.reader(lines[:1], delimiter=separator)))
            if separator == ",":
                return ","
            if width > widths:
                best, widths = separator, width
    return best


def _decimal_commas(frame):
    """Columns (of a semicolon-separated file) whose numbers use a decimal comma: 169,9 -> 169.9."""
    converted = []
    for name in frame.columns:
        text = frame[name].dropna().astype(str).str.strip()
        if len(text) and text.str.fullmatch(r"[+-]?\d+(,\d+)?").all() and text.str.contains(",").any():
            frame[name] = frame[name].str.replace(",", ".", regex=False)
            converted.append(str(name))
    return converted


def digest(path):
    """SHA-256 of the file at ``path``, in hex."""
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def training_source(data_file, dataset, target, default_dataset, command):
    """(CSV path, target column, bundled data set name or None) for ``DATA.csv --target COL`` or
    ``--dataset NAME``; with neither, ``default_dataset``. A CSV needs --target; a data set's
    target is its ``target`` column."""
    if data_file and dataset:
        raise click.UsageError("Give a CSV file or --dataset, not both.")
    if data_file:
        if not target:
            columns = ", ".join(map(str, read_csv(data_file).columns))
            raise click.UsageError(f"Say which column of {data_file} to predict with --target COLUMN; "
                                   f"its columns are: {columns}.")
        return data_file, target, None
    if not dataset and target:
        raise click.UsageError(f"--target needs a CSV file ({command} DATA.csv --target COLUMN), "
                               "or a bundled --dataset NAME.")
    dataset = dataset or default_dataset
    return dataset_path(dataset), target or xpann.datasets.TARGET_COLUMN, dataset


def rows_with_target(frame, target, path):
    """(the rows of ``frame`` whose ``target`` cell is filled, how many were not)."""
    present = frame[target].notna()
    if not present.any():
        raise ValueError(f"The target column {target!r} of {path} is empty in every row.")
    return frame[present], int((~present).sum())


def input_file(data_file, dataset):
    """The CSV to read for ``DATA.csv`` or ``--dataset NAME`` (exactly one of them)."""
    if data_file and dataset:
        raise click.UsageError("Give a CSV file or --dataset, not both.")
    if not data_file and not dataset:
        raise click.UsageError("Give a CSV file (DATA.csv) or a bundled data set (--dataset NAME).")
    return data_file or str(dataset_path(dataset))


def read_table(path):
    """The CSV at ``path`` as a CsvFile. Missing, empty, unreadable or malformed files are a
    ValueError naming the file. Only empty cells (or spaces) and the words NaN/nan are missing:
    None, NA, N/A and null are ordinary values."""
    import pandas

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"No such file: {path}.")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a CSV file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty.")
    try:
        separator = _separator(path)
        raw = pandas.read_csv(path, sep=separator, encoding=ENCODING, dtype=str, na_filter=False,
                              low_memory=False)
        fingerprint = digest(path)
    except pandas.errors.EmptyDataError:
        raise ValueError(f"{path} is empty (no header row).") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte {error.start} cannot be read); "
                         "save it as a UTF-8 CSV file.") from None
    except pandas.errors.ParserError as error:
        detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise ValueError(f"{path} is not a well-formed CSV file: {detail}") from None
    except PermissionError:
        raise ValueError(f"Cannot read {path}: permission denied.") from None
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror or error}.") from None
    except ValueError as error:
        raise ValueError(f"{path} is not a readable CSV file ({error}).") from None
    if len(raw) == 0:
        raise ValueError(f"{path} has a header but no data rows.")
    raw = raw.astype(object)
    raw.index = pandas.RangeIndex(2, len(raw) + 2, name="line")
    frame = raw.copy()
    for name in frame.columns:
        column = frame[name]
        frame[name] = column.where(~(column.isin(MISSING) | (column.str.strip() == "")))
    notes = []
    if separator != ",":
        notes.append(f"separated by {SEPARATORS[separator]}")
        if separator == ";":
            converted = _decimal_commas(frame)
            if converted:
                notes.append(f"decimal commas in {', '.join(converted)}")
    return CsvFile(path, frame, raw, separator, notes, fingerprint)


def read_csv(path):
    """The rows of the CSV at ``path`` as a DataFrame of text cells (NaN where missing) indexed
    by line number ("line" 2, 3, ...); see ``read_table``."""
    return read_table(path).frame


def require_column(frame, column, path, what="Column"):
    """ValueError when ``column`` is not in ``frame``: lists the columns and the nearest name."""
    if column in frame.columns:
        return
    columns = [str(c) for c in frame.columns]
    close = [c for c in columns if c.lower() == str(column).lower()] or \
        difflib.get_close_matches(str(column), columns, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{what} {column!r} is not in {path}; its columns are: {', '.join(columns)}.{hint}")


def check_writable(path, what="file"):
    """ValueError unless ``path`` could be written: its folder exists and it is not a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"Cannot write the {what} to {path}: it is a folder; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"Cannot write the {what} to {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"Cannot write the {what} to {path}: the folder {folder} is not writable.")


def is_model_file(path):
    """True when ``path`` is an .npz archive holding an xpann model config."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return "config.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_output(path, inputs, what, option="--out"):
    """ValueError unless ``path`` may receive the ``what`` ("model" or "predictions"): writable,
    not one of the ``inputs`` ({description: path}); a model goes to a new .npz file or over an
    xpann model, predictions never over a model."""
    check_writable(path, what)
    path = os.fspath(path)
    for description, source in inputs.items():
        if source is None or not os.path.exists(path) or not os.path.exists(source):
            continue
        if os.path.samefile(path, source):
            raise ValueError(f"{option} {path} is the {description} {os.fspath(source)}; writing the {what} there "
                             f"would destroy it. Give another file name.")
    if what == "model":
        if not path.lower().endswith(".npz"):
            raise ValueError(f"{option} {path}: a model file name must end in .npz (for example model.npz).")
        if os.path.exists(path) and not is_model_file(path):
            raise ValueError(f"{option} {path} already exists and is not an xpann model; refusing to overwrite it. "
                             "Give a new file name, or remove the file first.")
    elif os.path.exists(path) and is_model_file(path):
        raise ValueError(f"{option} {path} is an xpann model file; refusing to overwrite it with the {what}. "
                         "Give a .csv file name.")


def quiet_stdout():
    """Point standard output at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def write_csv(frame, path=None):
    """Write ``frame`` (no index) to ``path`` atomically, or to standard output when ``path`` is None.
    The file gets the permissions of any new file (the umask's), like the other outputs."""
    if path is None:
        try:
            frame.to_csv(sys.stdout, index=False, lineterminator="\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (| head): that is fine, stop quietly
            quiet_stdout()
            raise click.exceptions.Exit(0) from None
        return
    path = os.fspath(path)
    check_writable(path, "predictions")
    with atomic_write(path, text=True) as stream:
        frame.to_csv(stream, index=False, lineterminator="\n")
