"""Reading a CSV file as the tabular pipeline sees it: every cell as text, NaN where missing.

A file path, ``-`` for standard input, or a pipe (``/dev/stdin``) are read. The separator is
sniffed; duplicate column names are refused (pandas would rename them quietly); a semicolon file
with decimal commas gets them turned into points. Every problem is one ValueError naming the file.
"""

import concurrent.futures
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
    number 2, 3, ...; with ``read_table(numbers=True)`` the columns of numbers as float64), ``raw``
    (the cells exactly as in the file), ``separator``, ``notes`` (what reading it involved, in
    words) and ``digest`` (SHA-256 of the bytes)."""

    def __init__(self, path, frame, raw, separator, notes, digest):
        self.path, self.frame, self.raw = path, frame, raw
        self.separator, self.notes, self.digest = separator, notes, digest

    @property
    def raw(self):
        """The cells exactly as in the file (read when first asked for, when ``read_table`` typed
        the frame: training never needs them)."""
        if callable(self._raw):
            self._raw = self._raw()
        return self._raw

    @raw.setter
    def raw(self, value):
        self._raw = value


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


def _decimal_commas(frame, names=None):
    """Columns (of a semicolon-separated file) whose numbers use a decimal comma: 169,9 -> 169.9.
    ``names``: the text columns (default: all; a float64 column has no commas)."""
    converted = []
    for name in frame.columns if names is None else names:
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


def _text_cells(content, separator, usecols=None):
    """The cells of the CSV bytes ``content`` exactly as written (object dtype, no missing cells),
    indexed by line number."""
    import pandas

    raw = pandas.read_csv(io.BytesIO(content), sep=separator, encoding=ENCODING, dtype=str, na_filter=False,
                          low_memory=False, usecols=usecols)
    raw = raw.astype(object)
    raw.index = pandas.RangeIndex(2, len(raw) + 2, name="line")
    return raw


def _missing_as_nan(column):
    """A text column with NaN in the cells read as missing (empty, spaces only, NaN, nan). Each
    distinct text is looked at once (a column repeats its values)."""
    import numpy
    import pandas

    codes, texts = pandas.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    blank = numpy.fromiter((text in MISSING or text.strip() == "" for text in texts), dtype=bool, count=len(texts))
    missing = blank[codes] | (codes < 0)
    return column.where(~missing)


def _long_digit_run(content, length=18):
    """True when ``content`` holds ``length`` or more digits in a row (a number pandas may read
    inexactly as a float: more than 17 digits)."""
    import numpy

    block = length // 2  # a run of `length` digits holds a whole block of `block` bytes at a multiple of it
    data = numpy.frombuffer(content, dtype=numpy.uint8)
    step = block * (1 << 20)
    for start in range(0, len(data), step):
        chunk = data[start:start + step]
        digits = (chunk[:len(chunk) // block * block] - 48) < 10  # uint8: the bytes 0-9 only
        for first in numpy.flatnonzero(digits.reshape(-1, block).all(axis=1)):
            at = start + first * block  # look around the block of digits
            low, high = max(0, at - length), min(len(data), at + block + length)
            window = (data[low:high] - 48) < 10
            edges = numpy.concatenate(([-1], numpy.flatnonzero(~window), [len(window)]))
            if (numpy.diff(edges) > length).any():
                return True
    return False


def _whole(values):
    """True when every value but NaN is a whole number (a look at the first ones first)."""
    import numpy

    with numpy.errstate(invalid="ignore"):
        if (numpy.mod(values[:4096], 1) > 0).any():
            return False
        return not (numpy.mod(values, 1) > 0).any()


def _typed_frame(content, separator, text, long_runs):
    """(the frame with float64 columns for the columns of numbers, the names of the text columns)
    or None when the file needs the text-only reading. A column becomes float64 only when every
    result downstream is the one its text gives: every filled cell is a number (no stray text,
    NaN words other than NaN/nan, infinities or values beyond float32), and the values are those
    the text parse gives, cell for cell. Columns named in ``text`` stay text. ``long_runs()``:
    whether the bytes hold 18 digits in a row (``_long_digit_run``)."""
    import numpy
    import pandas

    from xpann.preprocessing._messages import FLOAT32_MAX

    typed = pandas.read_csv(io.BytesIO(content), sep=separator, encoding=ENCODING, keep_default_na=False,
                            na_values=list(MISSING), low_memory=False)
    if len(typed) == 0 or not (isinstance(typed.index, pandas.RangeIndex) and typed.index.start == 0
                               and typed.index.step == 1):
        return None  # no rows, or an index column pandas took from the rows: the text reading decides
    names = list(typed.columns)
    typed.index = pandas.RangeIndex(2, len(typed) + 2, name="line")

    def as_text(name, cells):
        typed[name] = _missing_as_nan(pandas.Series(cells, index=typed.index, dtype=object))

    reread = []
    for position, name in enumerate(names):
        column = typed[name]
        kind = column.dtype.kind
        if name in text or kind not in "iuf":
            cells = column.to_numpy(dtype=object, na_value=numpy.nan) if kind in "OU" else None
            if name not in text and cells is not None and pandas.api.types.infer_dtype(cells) in ("string", "empty"):
                as_text(name, cells)  # the cells as written (NaN for the missing ones)
            else:
                reread.append(position)  # true/false (pandas reads them as bool, with gaps as objects), kept as text
            continue
        if kind in "iu":  # whole numbers in every row: read exactly, by pandas and by the text parse
            typed[name] = column.to_numpy(dtype=numpy.float64)
            continue
        values = column.to_numpy(dtype=numpy.float64, na_value=numpy.nan, copy=False)
        if not numpy.fmax.reduce(numpy.abs(values)) <= FLOAT32_MAX:  # NaN when every cell is missing
            reread.append(position)  # infinities and values beyond float32: messages show the text
            continue
        if _whole(values):
            observed = values[~numpy.isnan(values)]
            # Whole numbers with missing cells: the text parse reads them as integers, exactly;
            # pandas' float parse agrees but for -0 and numbers of more than 17 digits.
            if (numpy.abs(observed) >= 2.0 ** 53).any() or (numpy.signbit(observed) & (observed == 0)).any() \
                    or long_runs():
                reread.append(position)
    if reread:
        cells = _text_cells(content, separator, usecols=reread)
        if list(cells.columns) != [names[p] for p in reread]:
            return None
        for name in cells.columns:
            as_text(name, cells[name].to_numpy(dtype=object))
    texts = [name for name in names if typed[name].dtype == object]
    return typed, texts


def _typed_text_columns(frame, names, text):
    """Turn the text columns among ``names`` whose every filled cell is a number (spaces around
    them, grouped 1,699.0, decimal commas already turned into points) into float64, when the
    values, the missing cells and any message would be the same."""
    import numpy

    from xpann.preprocessing._cells import _parse_numbers
    from xpann.preprocessing._messages import FLOAT32_MAX

    for name in names:
        if name in text:
            continue
        column = frame[name]
        present = column.dropna()
        if present.empty or _parse_numbers(present.iloc[:64])[1].any():
            continue
        values, bad = _parse_numbers(column)
        observed = values[~numpy.isnan(values)]
        if bad.any() or observed.size != len(present):
            continue  # stray text, or filled cells read as NaN ("NAN", " nan")
        if not (numpy.abs(observed) <= FLOAT32_MAX).all():
            continue
        frame[name] = values


def read_table(path, numbers=False, text=()):
    """The CSV at ``path`` (``-``: standard input) as a CsvFile. Missing, empty, unreadable or
    malformed files and repeated column names are a ValueError naming the file. Only empty cells
    (or spaces) and the words NaN/nan are missing: None, NA, N/A and null are ordinary values.

    ``numbers=True``: the columns whose every filled cell is a number are float64 in ``frame``
    (NaN where missing) instead of text, which the preprocessing reads without parsing the text
    again, giving the same values, kinds, warnings and errors. Name in ``text`` the columns whose
    cells must stay text whatever they hold: a target column (its class labels are kept as
    written: "1" stays "1", not 1) and, for a fitted model, its categorical and date columns
    (a category "007" or "1.50" is not the number 7 or 1.5). ``raw`` is read again from the bytes
    when first asked for. One message differs: a value of new rows so far from the training values
    that it does not fit float32 once standardised is shown as Python writes the float (1e+30),
    not as the file does (1e30); values beyond float32 themselves keep their column as text."""
    import pandas

    path = os.fspath(path)
    text = set(text)
    try:
        stream, fingerprint, shown = _opened(path)
    except PermissionError:
        raise ValueError(f"Cannot read {path}: permission denied.") from None
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror or error}.") from None
    with stream:
        try:
            content = stream.read()
            sample = content[:SNIFF_BYTES].decode(ENCODING, errors="replace")
            if not sample.strip():
                raise ValueError(f"{shown} is empty.")
            separator = _separator(sample)
            repeated = _duplicates(_header(sample, separator))
            if repeated:
                raise ValueError(f"{shown} has more than one column named {', '.join(map(repr, repeated))}; "
                                 "column names must be different. Rename or remove the repeats.")
            with concurrent.futures.ThreadPoolExecutor(2) as pool:  # hashing and scanning free the GIL
                hashed = pool.submit(lambda: fingerprint or hashlib.sha256(content).hexdigest())
                runs = pool.submit(_long_digit_run, content) if numbers else None
                typed = _typed_frame(content, separator, text, runs.result) if numbers else None
                raw = None if typed is not None else _text_cells(content, separator)
                fingerprint = hashed.result()
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
    if typed is not None:
        frame, texts = typed
        raw = lambda: _text_cells(content, separator)  # noqa: E731 - read when asked for
    else:
        frame = raw.copy()
        for name in frame.columns:
            frame[name] = _missing_as_nan(frame[name])
        texts = list(frame.columns)
    if len(frame) == 0:
        raise ValueError(f"{shown} has a header but no data rows.")
    notes = []
    if separator != ",":
        notes.append(f"separated by {SEPARATORS[separator]}")
        if separator == ";":
            converted = _decimal_commas(frame, texts)
            if converted:
                notes.append(f"decimal commas in {', '.join(converted)}")
    if typed is not None:
        _typed_text_columns(frame, texts, text)
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
