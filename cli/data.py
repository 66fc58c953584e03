"""Reading and writing CSV files for the commands, with one clear message per kind of mistake."""

import contextlib
import os
import stat
import sys
import zipfile

import click

import xpann
from xpann import tabular
from xpann.io import atomic_write


def dataset_path(name):
    """The bundled CSV for data set ``name``; an unknown name lists the bundled ones."""
    names = xpann.datasets.names()
    if name not in names:
        raise ValueError(f"Unknown data set {name!r}; the bundled data sets are {', '.join(names)}.")
    return xpann.datasets.csv_path(name)


MISSING_HELP = ("Missing values: empty cells (or spaces only) and the words NaN/nan; None, NA, N/A and null "
                "are ordinary text. Comma-, semicolon- and tab-separated files are read.")


def training_source(data_file, dataset, target, default_dataset, command):
    """(CSV path, target column, bundled data set name or None) for ``DATA.csv --target COL`` or
    ``--dataset NAME``; with neither, ``default_dataset``. A CSV needs --target; a data set's
    target is its ``target`` column."""
    if data_file and dataset:
        raise click.UsageError("Give a CSV file or --dataset, not both.")
    if data_file:
        if not target:
            columns = ", ".join(map(str, tabular.read_table(data_file).frame.columns))
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


def require_column(frame, column, path, what="Column"):
    """ValueError when ``column`` is not in ``frame`` (read from ``path``), naming the nearest column."""
    tabular.require_column(frame, column, path, what)


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
    """True when ``path`` is a file: an .npz archive holding an xpann model config (a device or a
    pipe is none, and is never read to find out)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return "config.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_output(path, inputs, what, option="--out"):
    """ValueError unless ``path`` may receive the ``what`` ("model", "predictions", or JSON
    "records"/"JSON results"): writable, not one of the ``inputs`` ({description: path}); a model
    goes to a new .npz file or over an xpann model, JSON to a new file or over a .json file,
    predictions never over a model."""
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
                         f"Give a {'.json' if 'JSON' in what or what == 'records' else '.csv'} file name.")
    elif ("JSON" in what or what == "records") and os.path.isfile(path) and not path.lower().endswith(".json"):
        raise ValueError(f"{option} {path} already exists and is not a .json file; refusing to overwrite it with "
                         f"the {what}. Give a new file name, or remove the file first.")


@contextlib.contextmanager
def output_stream(path):
    """A text stream to ``path``: a file is replaced atomically; standard output (/dev/stdout, even
    redirected to a file) is written through ``sys.stdout``; another device or pipe (a named pipe)
    is written as it is, never replaced by a file. A write that fails names ``path``."""
    path = os.fspath(path)
    try:
        if is_standard_output(path):
            yield sys.stdout
            sys.stdout.flush()
        elif os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            with open(path, "w", encoding="utf-8", newline="") as stream:
                yield stream
        else:
            with atomic_write(path, text=True) as stream:
                yield stream
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            raise
        raise ValueError(f"Cannot write {path}: {error.strerror or error}.") from None


def is_standard_output(path):
    """True when ``path`` is this process's standard output (/dev/stdout, or the file it is
    redirected to): written through ``sys.stdout``, whose position a reopen would not share."""
    try:
        return os.path.samefile(path, "/dev/stdout")
    except (OSError, ValueError):
        return False


def quiet_stdout():
    """Point standard output at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class _OutlivingStdout:
    """Standard output that, once its reader has gone (``xpann train | head``), drops what follows
    instead of failing, so the command still finishes its work."""

    def __init__(self, stream):
        self._stream, self.reader_gone = stream, False

    def write(self, text):
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self):
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self):
        self.reader_gone = True
        quiet_stdout()

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def outliving_the_reader():
    """Inside, standard output whose reader goes away stops being written, without an error."""
    original = sys.stdout
    sys.stdout = _OutlivingStdout(original)
    try:
        yield
    finally:
        sys.stdout = original


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
    check_writable(path, "predictions")
    with output_stream(path) as stream:
        frame.to_csv(stream, index=False, lineterminator="\n")
