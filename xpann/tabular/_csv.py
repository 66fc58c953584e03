"""Reading a CSV file as the tabular pipeline sees it: every cell as text, NaN where missing.

A file path, ``-`` for standard input, or a pipe (``/dev/stdin``) are read. The separator is
sniffed; duplicate column names are refused (pandas would rename them quietly); a semicolon file
with decimal commas gets them turned into points. Every problem is one ValueError naming the file.
"""

import csv
import hashlib
import io
import os
import stat
import sys

ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark spreadsheets write
MISSING = ("", "NaN", "nan")  # the only cells read as missing (and cells of spaces only)
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
SNIFF_BYTES = 1 << 16
STANDARD_INPUT = "-"


class CsvFile:
    """A CSV file as read: ``frame`` (every cell as text, NaN where missing, indexed by line
    number 2, 3, ...), ``raw`` (the cells exactly as in the file), ``separator``, ``notes`` (what
    reading it involved, in words) and ``digest`` (SHA-256 of the bytes)."""

    def __init__(self, path, frame, raw, separator, notes, digest):
        self.path, self.frame, self.raw = path, frame, raw
        self.separator, self.notes, self.digest = separator, notes, digest


def _separator(sample):
    """The separator that splits the first lines of ``sample`` into the same number (> 1) of
    fields: a comma when it does, else a semicolon, tab or bar (the one giving the most fields)."""
    lines = sample.splitlines()
    if len(sample) >= SNIFF_BYTES and len(lines) > 1:
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


def _header(sample, separator):
    """The column names of the first record of ``sample``."""
    return next(csv.reader(io.StringIO(sample), delimiter=separator), [])


def _duplicates(names):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _opened(path):
    """(a binary stream to parse, the SHA-256 of the bytes or None to compute from the file, the
    path in messages). Standard input and pipes are read into memory; a file is opened."""
    if path == STANDARD_INPUT:
        content = sys.stdin.buffer.read()
        return io.BytesIO(content), hashlib.sha256(content).hexdigest(), "standard input"
    if not os.path.exists(path):
        raise ValueError(f"No such file: {path}.")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a CSV file.")
    if stat.S_ISREG(os.stat(path).st_mode):
        if os.path.getsize(path) == 0:
            raise ValueError(f"{path} is empty.")
        return open(path, "rb"), None, path
    with open(path, "rb") as stream:  # a pipe or device: read once
        content = stream.read()
    return io.BytesIO(content), hashlib.sha256(content).hexdigest(), path


def read_table(path):
    """The CSV at ``path`` (``-``: standard input) as a CsvFile. Missing, empty, unreadable or
    malformed files and repeated column names are a ValueError naming the file. Only empty cells
    (or spaces) and the words NaN/nan are missing: None, NA, N/A and null are ordinary values."""
    import pandas

    path = os.fspath(path)
    try:
        stream, fingerprint, shown = _opened(path)
    except PermissionError:
        raise ValueError(f"Cannot read {path}: permission denied.") from None
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror or error}.") from None
    with stream:
        try:
            sample = stream.read(SNIFF_BYTES).decode(ENCODING, errors="replace")
            if not sample.strip():
                raise ValueError(f"{shown} is empty.")
            separator = _separator(sample)
            repeated = _duplicates(_header(sample, separator))
            if repeated:
                raise ValueError(f"{shown} has more than one column named {', '.join(map(repr, repeated))}; "
                                 "column names must be different. Rename or remove the repeats.")
            stream.seek(0)
            raw = pandas.read_csv(stream, sep=separator, encoding=ENCODING, dtype=str, na_filter=False,
                                  low_memory=False)
            fingerprint = fingerprint or digest(path)
        except pandas.errors.EmptyDataError:
            raise ValueError(f"{shown} is empty (no header row).") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{shown} is not UTF-8 text (byte {error.start} cannot be read); "
                             "save it as a UTF-8 CSV file.") from None
        except pandas.errors.ParserError as error:
            detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
            raise ValueError(f"{shown} is not a well-formed CSV file: {detail}") from None
        except PermissionError:
            raise ValueError(f"Cannot read {shown}: permission denied.") from None
        except OSError as error:
            raise ValueError(f"Cannot read {shown}: {error.strerror or error}.") from None
        except ValueError as error:
            if str(error).startswith(shown):
                raise
            raise ValueError(f"{shown} is not a readable CSV file ({error}).") from None
    if len(raw) == 0:
        raise ValueError(f"{shown} has a header but no data rows.")
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
    return CsvFile(shown, frame, raw, separator, notes, fingerprint)


def require_column(frame, column, path, what="Column"):
    """ValueError when ``column`` is not in ``frame``: lists the columns and the nearest name."""
    import difflib

    if column in frame.columns:
        return
    columns = [str(c) for c in frame.columns]
    close = [c for c in columns if c.lower() == str(column).lower()] or \
        difflib.get_close_matches(str(column), columns, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f" in {path}" if path else " in the data"
    raise ValueError(f"{what} {column!r} is not{where}; its columns are: {', '.join(columns)}.{hint}")
