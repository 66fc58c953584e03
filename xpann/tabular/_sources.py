"""The ``data`` a TabularModel is given: a pandas DataFrame, or the path of a CSV or Parquet file."""

import os

from ._csv import CsvFile, digest, read_table

PARQUET_SUFFIXES = (".parquet", ".pq")


class Source:
    """One table as the pipeline sees it: ``frame`` (text or typed cells, NaN where missing),
    ``raw`` (a CSV's cells exactly as written, read when first asked for; else the frame),
    ``path`` (None for a frame), ``shown`` (the name used in messages), ``notes`` and ``digest``
    (SHA-256 of a file)."""

    def __init__(self, frame, table=None, path=None, shown=None, notes=(), digest=None):
        self.frame, self._table = frame, table
        self.path, self.shown, self.notes, self.digest = path, shown, list(notes), digest

    @property
    def raw(self):
        return self.frame if self._table is None else self._table.raw

    def about(self, text):
        """``text`` prefixed with the file's name, for a message about its contents."""
        return text if self.path is None else f"{self.shown}: {text}"


def _parquet(path):
    import pandas

    if not os.path.isfile(path):
        raise ValueError(f"No such file: {path}." if not os.path.exists(path) else f"{path} is not a file.")
    try:
        frame = pandas.read_parquet(path)
    except ImportError:
        raise ValueError(f"Reading {path} needs pyarrow, which is not installed: pip install pyarrow.") from None
    except Exception as error:  # pyarrow's own errors for a damaged file
        raise ValueError(f"{path} is not a readable Parquet file ({type(error).__name__}: {error}).") from None
    if len(frame) == 0:
        raise ValueError(f"{path} has no data rows.")
    return Source(frame, path=path, shown=path, digest=digest(path))


def read_source(data, text=()):
    """A Source for ``data``: a DataFrame (used as given, never modified), a CsvFile read before,
    or a path. A CSV's columns of numbers are read as numbers, but those named in ``text`` (see
    ``read_table``)."""
    import pandas

    if isinstance(data, pandas.DataFrame):
        if len(data.columns) != len(set(data.columns)):
            repeated = sorted({str(c) for c in data.columns if list(data.columns).count(c) > 1})
            raise ValueError(f"The data frame has more than one column named {', '.join(map(repr, repeated))}; "
                             "column names must be different.")
        if len(data) == 0:
            raise ValueError("The data frame has no rows.")
        return Source(data)
    if isinstance(data, CsvFile):  # read already (``TabularModel.read``): messages name its file
        return Source(data.frame, data, path=data.path, shown=data.path, notes=data.notes, digest=data.digest)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if path.lower().endswith(PARQUET_SUFFIXES):
            return _parquet(path)
        table = read_table(path, numbers=True, text=text)
        return Source(table.frame, table, path=path, shown=table.path, notes=table.notes, digest=table.digest)
    raise ValueError(f"data must be a pandas DataFrame or the path of a CSV or Parquet file, "
                     f"got {type(data).__name__}.")
