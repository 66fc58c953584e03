"""The model file format: one .npz holding plain numeric arrays and a JSON config, written atomically.

No pickle is written or read. What goes into the config and arrays is the model's business
(``Sequential.save`` and ``load_model``); this module knows only the file.
"""

import contextlib
import json
import math
import os
import re
import secrets
import stat
import struct
import time
import zipfile

import numpy

from ._version import __version__

FORMAT = "xpann.model"
FORMAT_VERSION = 1

MAX_MEMBERS = 16384
"""The most members a model file's archive may list (one per tensor and optimizer slot, and the config)."""
MAX_DIRECTORY_BYTES = 16 * 2**20
"""The largest archive directory read (names and headers of the members)."""
MAX_CONFIG_CHARS = 2**24
"""The longest JSON config read: 16 Mi characters (NumPy stores them as UTF-32: 64 MiB)."""
MAX_CONFIG_DEPTH = 100
"""The deepest nesting of lists and objects in a config that is read."""


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


STALE_SECONDS = 600
"""A temporary file that a killed save left is removed by a later save of the same target once no
process with its writer's id runs on this machine and it has not changed for this long."""

_NAME_KEPT = 100  # of the target's name in its temporary files' names, which stay under 255 characters
_TEMPORARY_TAIL = re.compile(r"(\d+)-[0-9a-f]+\.tmp")  # after ".{name}.xpann-": the writer's process id, a token


@contextlib.contextmanager
def atomic_write(path, text=False):
    """A stream to a temporary file beside ``path`` that replaces ``path`` only once it is whole and
    on disk; on any error the old file stays, the temporary one is removed and an OSError names
    ``path``. The file gets the mode of the one it replaces, else the mode a new file gets (0o666
    less the umask, applied by the system when the temporary file is created: the umask is never
    read or changed here).

    The temporary file is ``.{name}.xpann-{process id}-{token}.tmp``. One that a writer killed
    outright left behind is removed by the next save of the same target once its process no longer
    runs here and it has not changed for STALE_SECONDS: a live writer on this machine keeps its
    process, one on another machine sharing the folder keeps writing, so neither loses its file."""
    path = os.fspath(path)
    try:
        mode = _existing_mode(path)
        folder, name = os.path.split(os.path.abspath(path))
        prefix = f".{name[:_NAME_KEPT]}.xpann-"
        _remove_stale(folder, prefix)
        handle, temporary = _create(folder, prefix)
    except OSError as error:
        raise _naming(error, path) from None
    try:
        options = {"encoding": "utf-8", "newline": ""} if text else {}
        with os.fdopen(handle, "w" if text else "wb", **options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming(error, path) from None
        raise


def _existing_mode(path):
    """The permission bits of the file at ``path``, or None where there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _create(folder, prefix):
    """(descriptor, path) of a new file ``{prefix}{process id}-{token}.tmp`` in ``folder``, open for
    writing, with the mode the system gives a new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = os.path.join(folder, f"{prefix}{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _remove_stale(folder, prefix):
    """Remove the temporary files ``{prefix}{process id}-{token}.tmp`` in ``folder`` whose process
    no longer runs here and that have not changed for STALE_SECONDS (one that cannot be removed stays)."""
    now = time.time()
    with os.scandir(folder) as entries:
        for entry in entries:
            tail = _TEMPORARY_TAIL.fullmatch(entry.name[len(prefix):]) if entry.name.startswith(prefix) else None
            with contextlib.suppress(OSError):
                if tail and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS \
                        and not _running(int(tail[1])):
                    os.unlink(entry.path)


def _running(pid):
    """Whether a process ``pid`` runs on this machine. On Windows, where a file a writer holds open
    cannot be removed, the age rule alone decides (and os.kill would end the process)."""
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's
        return True
    return True


def _naming(error, path):
    """``error``, raised while writing ``path`` through its temporary file, as an OSError of the same
    errno that names ``path`` instead."""
    reason = error.strerror or str(error)
    if error.errno is None:
        return OSError(f"Cannot write {path}: {reason}")
    return OSError(error.errno, f"Cannot write {path}: {reason}")


def write_model_file(path, config, arrays):
    """Write ``config`` (JSON values) and ``arrays`` (name -> numeric array) to ``path`` atomically,
    stamped with the format, its version and the xpann version."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give a file name such as model.npz.")
    stamped = {"format": FORMAT, "format_version": FORMAT_VERSION, "xpann_version": __version__, **config}
    if _nested_deeper(stamped, MAX_CONFIG_DEPTH):
        raise ValueError(f"The model cannot be saved: its config, model.metadata included, nests lists and dicts "
                         f"deeper than the {MAX_CONFIG_DEPTH} levels load_model reads.")
    text = _json_text(stamped)
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(f"The model cannot be saved: its config, model.metadata included, takes {len(text)} "
                         f"characters, more than the {MAX_CONFIG_CHARS} load_model reads.")
    arrays = {**arrays, "config": numpy.array(text)}
    with atomic_write(path) as stream:
        numpy.savez(stream, **arrays)


_TEXT_CHUNK = 2**20  # bytes of UTF-32 decoded at a time
_NPY_HEADERS = {(1, 0): numpy.lib.format.read_array_header_1_0, (2, 0): numpy.lib.format.read_array_header_2_0}


class _Refusal(Exception):
    """What is wrong with one member (the reader names the member and the file)."""


class ModelFile:
    """An xpann model file open for reading (``with ModelFile(path) as file:``): ``config`` is read
    at once, each array only when ``read`` asks for it, so members the config does not call for are
    never decompressed. Before a member is read, its NPY header must give what its reader expects
    and the size the archive declares for it must be that header's and data's: no more is inflated
    than the config implies. FileNotFoundError if there is no file, else ValueError naming the file
    and the fault."""

    def __init__(self, path):
        path = self.path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No model file at {path}.")
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not an xpann model file (not an .npz archive).")
        members, directory = _declared_directory(path)
        if members > MAX_MEMBERS or directory > MAX_DIRECTORY_BYTES:
            raise ValueError(f"{path} is not an xpann model file (its archive lists {members} members in "
                             f"{directory} bytes; a model file has at most {MAX_MEMBERS} in {MAX_DIRECTORY_BYTES}).")
        try:
            self._archive = zipfile.ZipFile(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not an xpann model file ({type(error).__name__}: {error}).") from None
        try:
            self.config = self._read_config()
        except BaseException:
            self._archive.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self._archive.close()

    def read(self, name, shape):
        """The array of member ``name`` (None if the file has none). It must hold real numbers
        (bool, int or float, at most 8 bytes each) in ``shape``, checked on its header before it is
        read, and only finite ones, checked after."""
        def check(stored, dtype):
            if dtype.kind not in "biuf" or dtype.itemsize > 8:
                raise _Refusal(f"holds {dtype} values, not real numbers")
            if stored != tuple(shape):
                raise _Refusal(f"holds an array of shape {stored} where the config needs {tuple(shape)}")

        info = self._info(name)
        if info is None:
            return None
        try:
            (stored, fortran_order, dtype), data = _read_npy(self._archive, info, check)
        except _Refusal as refusal:
            raise ValueError(f"{self.path}: member {name!r} {refusal}.") from None
        array = numpy.frombuffer(data, dtype=dtype).reshape(stored, order="F" if fortran_order else "C")
        if not numpy.isfinite(array).all():
            raise ValueError(f"{self.path}: member {name!r} holds NaN or infinite values.")
        return array

    def _info(self, name):
        try:
            return self._archive.getinfo(f"{name}.npy")
        except KeyError:
            return None

    def _read_config(self):
        def check(shape, dtype):
            if dtype.kind != "U" or shape != ():
                raise _Refusal("is not a text entry")
            if dtype.itemsize // 4 > MAX_CONFIG_CHARS:
                raise _Refusal(f"is {dtype.itemsize // 4} characters long; xpann reads configs of at most "
                               f"{MAX_CONFIG_CHARS}")

        def not_a_model(why):
            return ValueError(f"{self.path} is not an xpann model file ({why}).")

        info = self._info("config")
        if info is None:
            raise not_a_model("an .npz archive without an xpann model config")
        try:
            _, text = _read_npy(self._archive, info, check)
        except _Refusal as refusal:
            raise not_a_model(f"its config {refusal}") from None
        deep = not_a_model(f"unreadable config: nested deeper than {MAX_CONFIG_DEPTH} levels")
        try:
            config = json.loads(text.rstrip("\0"))  # NumPy pads text with NULs
        except RecursionError:
            raise deep from None
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise not_a_model(f"unreadable config: {error}") from None
        if _nested_deeper(config, MAX_CONFIG_DEPTH):
            raise deep
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise not_a_model("no xpann model config inside")
        version = config.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"{self.path} has an invalid model format version {version!r}.")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{self.path} was written in model format {version!r} by xpann {config.get('xpann_version')}; "
                f"this xpann ({__version__}) reads format {FORMAT_VERSION} and older. Upgrade xpann."
            )
        return config


def _declared_directory(path):
    """(members, bytes) of the archive directory that the end record of the zip at ``path`` declares
    (65535 members where a zip64 record holds the count), read before zipfile reads the directory."""
    with open(path, "rb") as stream:
        end = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, end - 22 - 0xFFFF))  # the end record: 22 bytes and a comment of up to 65535
        tail = stream.read()
    record = tail[tail.rfind(b"PK\x05\x06"):]
    return struct.unpack("<HL", record[10:16])


def _read_npy(archive, info, check):
    """((shape, fortran_order, dtype), data) of the NPY member ``info``: its bytes, or for text (the
    config) its str, decoded a chunk at a time so that the UTF-32 form is never held whole.
    ``check(shape, dtype)`` sees the header first and raises _Refusal to stop; then the size the
    archive declares must be the header's and the data's, so reading inflates no more than the
    header promises. _Refusal for any fault: a hostile member can make any decoder fail."""
    try:
        with archive.open(info) as stream:
            version = numpy.lib.format.read_magic(stream)
            if version not in _NPY_HEADERS:
                raise _Refusal(f"is in NPY format {version[0]}.{version[1]}, not 1.0 or 2.0")
            shape, fortran_order, dtype = _NPY_HEADERS[version](stream)
            check(shape, dtype)
            size = dtype.itemsize * math.prod(shape)
            if info.file_size != stream.tell() + size:
                raise _Refusal(f"declares {info.file_size} bytes where its NPY header makes {stream.tell() + size}")
            if dtype.kind != "U":
                return (shape, fortran_order, dtype), stream.read(size)
            codec = "utf-32-be" if dtype.str[0] == ">" else "utf-32-le"
            parts = [stream.read(_TEXT_CHUNK).decode(codec) for _ in range(0, size, _TEXT_CHUNK)]
            return (shape, fortran_order, dtype), "".join(parts)
    except _Refusal:
        raise
    except Exception as error:  # noqa: BLE001 - whatever a damaged member makes zipfile or NumPy raise
        raise _Refusal(f"is not a readable NPY array ({type(error).__name__}: {error})") from None


def _nested_deeper(value, limit):
    """Whether lists and dicts nest in the JSON value ``value`` more than ``limit`` levels deep
    (walked level by level, not by recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (dict, list))]
    return bool(level)
