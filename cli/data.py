"""Reading and writing CSV files for the commands, with one clear message per kind of mistake."""

import difflib
import os
import sys
import tempfile

import click

import xpann

ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark spreadsheets write


def dataset_path(name):
    """The bundled CSV for data set ``name``; an unknown name lists the bundled ones."""
    names = xpann.datasets.names()
    if name not in names:
        raise ValueError(f"Unknown data set {name!r}; the bundled data sets are {', '.join(names)}.")
    return xpann.datasets.csv_path(name)


def read_csv(path, raw=False):
    """The rows of the CSV at ``path`` as a DataFrame indexed by line number ("line" 2, 3, ...).

    ``raw=True`` keeps every cell as the text in the file (for writing the rows back unchanged).
    Missing, empty, unreadable or malformed files are a ValueError naming the file.
    """
    import pandas

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"No such file: {path}.")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a CSV file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty.")
    options = {"dtype": str, "keep_default_na": False} if raw else {}
    try:
        frame = pandas.read_csv(path, encoding=ENCODING, low_memory=False, **options)
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
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no data rows.")
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for separator, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if separator in header:
                raise ValueError(f"{path} looks separated by {word}, but xpann reads comma-separated files; "
                                 f"save it with commas between the columns.")
    frame.index = pandas.RangeIndex(2, len(frame) + 2, name="line")
    return frame


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


def write_csv(frame, path=None):
    """Write ``frame`` (no index) to ``path`` atomically, or to standard output when ``path`` is None."""
    if path is None:
        try:
            frame.to_csv(sys.stdout, index=False, lineterminator="\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (| head): stop quietly
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            raise click.exceptions.Exit(1) from None
        return
    path = os.fspath(path)
    check_writable(path, "predictions")
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".xpann-",
                                         suffix=".csv.tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            frame.to_csv(stream, index=False, lineterminator="\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
