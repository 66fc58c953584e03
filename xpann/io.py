"""The model file format: one .npz holding plain numeric arrays and a JSON config, written atomically.

No pickle is written or read. What goes into the config and arrays is the model's business
(``Sequential.save`` and ``load_model``); this module knows only the file.
"""

import contextlib
import json
import os
import stat
import tempfile
import zipfile

import numpy

from ._version import __version__

FORMAT = "xpann.model"
FORMAT_VERSION = 1


def _json_text(config):
    try:
        return json.dumps(config, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"The model cannot be saved: model.metadata must hold only JSON values "
            f"(dict, list, str, int, float, bool, None) ({error})."
        ) from None


def generator_state(generator):
    """The JSON-ready state of a host numpy Generator, or None for any other generator."""
    if isinstance(generator, numpy.random.Generator):
        return generator.bit_generator.state
    return None


def set_generator_state(generator, state):
    """Put back a state from generator_state (ignored for another kind of generator)."""
    if isinstance(generator, numpy.random.Generator) and isinstance(state, dict):
        if state.get("bit_generator") == type(generator.bit_generator).__name__:
            generator.bit_generator.state = state


def _file_mode(path):
    """The mode a new file at ``path`` gets: the existing file's, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, text=False):
    """A stream to a temporary file beside ``path`` that replaces ``path`` only once it is whole and
    on disk; on any error the old file stays and the temporary one is removed."""
    path = os.fspath(path)
    mode = _file_mode(path)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".xpann-",
                                         suffix=".tmp")
    try:
        options = {"encoding": "utf-8", "newline": ""} if text else {}
        with os.fdopen(handle, "w" if text else "wb", **options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_model_file(path, config, arrays):
    """Write ``config`` (JSON values) and ``arrays`` (name -> numeric array) to ``path`` atomically,
    stamped with the format, its version and the xpann version."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give a file name such as model.npz.")
    stamped = {"format": FORMAT, "format_version": FORMAT_VERSION, "xpann_version": __version__, **config}
    arrays = {**arrays, "config": numpy.array(_json_text(stamped))}
    with atomic_write(path) as stream:
        numpy.savez(stream, **arrays)


def read_model_file(path):
    """The config dict and the arrays of an xpann model file; ValueError if it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an xpann model file (not an .npz archive).")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not an xpann model file ({type(error).__name__}: {error}).") from None
    text = arrays.pop("config", None)
    if text is None:
        raise ValueError(f"{path} is not an xpann model file (an .npz archive without an xpann model config).")
    try:
        if text.dtype.kind != "U" or text.ndim != 0:
            raise ValueError("its config is not a text entry")
        config = json.loads(str(text))
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not an xpann model file (unreadable config: {error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path} is not an xpann model file (no xpann model config inside).")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path} has an invalid model format version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in model format {version!r} by xpann {config.get('xpann_version')}; "
            f"this xpann ({__version__}) reads format {FORMAT_VERSION} and older. Upgrade xpann."
        )
    return config, arrays
