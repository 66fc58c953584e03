"""Running ``xpann`` in-process for the CLI tests, and the strict contract a failing command keeps.

``run(*args)`` runs a command that must succeed (or, with ``ok=False``, fail without a crash).
``fails(*args, culprit=...)`` runs a command that must fail the way every user mistake fails:

* it runs in an empty temporary folder (the current directory for the run), so that a default
  output such as ``model.npz`` cannot land in a shared folder;
* the exit code is exactly ``exit_code``: 1 for an ``Error:`` from the command, 2 for a Click
  usage error (a bad option value, a missing argument);
* the output holds exactly one line starting with ``Error:``, and that line names the culprit
  (the file, column or value given);
* no ``Traceback``, and the exception Click saw is the ``SystemExit`` of a message, not a crash;
* nothing is created or changed: the empty folder stays empty, every file named on the command
  line keeps its SHA-256, every folder named on it (or holding a file named on it) keeps its
  files and their digests, and every path named on it that did not exist still does not.
"""

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from click.testing import CliRunner

from xpann_cli.main import cli


def run(*args, ok=True):
    """Run ``xpann ARGS``; with ``ok`` the command must succeed, else it must fail cleanly."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    return result


def fails(*args, culprit, exit_code=1):
    """Run ``xpann ARGS`` in an empty folder; it must fail under the strict contract above.

    ``culprit``: a string or path (or a tuple of them) that the ``Error:`` line must name.
    Returns the Click result, with ``.error`` set to the ``Error:`` line."""
    assert exit_code in (1, 2), "1: an Error: from the command; 2: a Click usage error"
    culprits = culprit if isinstance(culprit, (tuple, list)) else (culprit,)
    assert culprits and all(str(c) for c in culprits), "name what the Error: line must name"
    folder = Path(tempfile.mkdtemp(prefix="xpann-fails-"))
    try:
        named = [Path(str(a)) for a in args if os.path.isabs(str(a))]
        before = _snapshot(folder, named)
        with contextlib.chdir(folder):
            result = CliRunner().invoke(cli, [str(a) for a in args])
        after = _snapshot(folder, named)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    output = result.output
    shown = f"xpann {' '.join(str(a) for a in args)}\n--- output ---\n{output}"
    assert "Traceback" not in output, shown
    assert isinstance(result.exception, SystemExit), f"{result.exception!r}\n{shown}"
    assert result.exit_code == exit_code, f"exit code {result.exit_code}, expected {exit_code}\n{shown}"
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"{len(errors)} Error: lines, expected exactly one\n{shown}"
    for name in culprits:
        assert str(name) in errors[0], f"the Error: line does not name {str(name)!r}\n{shown}"
    changed = {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()
               if before.get(key) != after.get(key)}
    assert not changed, f"the failing command created or changed files: {changed}\n{shown}"
    result.error = errors[0]
    return result


def _snapshot(folder, paths):
    """What a failing command must leave as it was: the run's folder (recursively), each path
    given (a file's digest, a folder's entries, or its absence, with its missing ancestors) and
    the folder holding each path given."""
    state = {("run folder", entry): digest for entry, digest in _tree(folder).items()}
    for path in paths:
        state[("given", str(path))] = _state(path)
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            state[("given", str(ancestor))] = None
            ancestor = ancestor.parent
        state[("holding folder", str(ancestor))] = _state(ancestor)
    return state


SPECIAL_FOLDERS = ("/dev", "/proc", "/sys")  # their files are devices or endless: named, never read


def _state(path):
    if path.is_dir():
        special = str(path.resolve()).startswith(SPECIAL_FOLDERS)
        return tuple(sorted((entry.name, "?" if special else _digest(entry)) for entry in path.iterdir()))
    return _digest(path) if path.exists() or path.is_symlink() else None


def _tree(folder):
    return {str(p.relative_to(folder)): _digest(p) for p in folder.rglob("*")}


def _digest(path):
    """A regular file's SHA-256; for anything else, what it is (a folder, a device, a dangling link)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "dangling link"
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode) or str(Path(path).resolve()).startswith(SPECIAL_FOLDERS):
        return f"special file {stat.S_IFMT(mode):o}"
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()
