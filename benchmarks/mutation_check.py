"""Mutation check: do the tests fail when the behaviour they guard breaks?

Copies the project (xpann/, cli/, tests/, pyproject.toml) to a temporary folder, plants one bug at a
time in the copy, runs the test files that guard that behaviour against the copy (PYTHONPATH = the
copy and a folder holding a symlink ``xpann_cli -> <copy>/cli``, so neither the editable install
nor the working tree is imported), and writes a Markdown table: mutant -> killed or survived, and
by which tests. First the unmutated copy must pass the same files, else a kill means nothing.

    python benchmarks/mutation_check.py [--out benchmarks/results/mutation_check_<date>.md] [--only NAME]

Runs one pytest process at a time, single-threaded (OPENBLAS_NUM_THREADS=1 as the suite has it).
"""

import argparse
import datetime
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# name, what the bug does, edits [(file, the exact text replaced (must occur once), its replacement)], test files
MUTANTS = [
    ("reduce_lr_ignores_cooldown", "ReduceLROnPlateau never enters a cooldown",
     [("xpann/callbacks.py",
       "            self.cooldown_left = self.cooldown\n",
       "            self.cooldown_left = 0\n")],
     ["tests/test_callbacks.py"]),
    ("checkpoint_mode_inverted", "ModelCheckpoint treats mode='max' as 'min' and 'min' as 'max'",
     [("xpann/callbacks.py",
       "        super().__init__(monitor, mode, 0.0)\n",
       "        super().__init__(monitor, {\"max\": \"min\", \"min\": \"max\"}.get(mode, mode), 0.0)\n")],
     ["tests/test_callbacks.py"]),
    ("thread_threshold_doubled", "PARALLEL_MIN_WORK 2**21 -> 2**22 (one BLAS thread up to twice the size)",
     [("xpann/backend/_threads.py",
       "PARALLEL_MIN_WORK = 2**21\n",
       "PARALLEL_MIN_WORK = 2**22\n")],
     ["tests/test_step_internals.py"]),
    ("thread_threshold_strict", "the whole pool only above PARALLEL_MIN_WORK, not from it (>= -> >)",
     [("xpann/backend/_threads.py",
       "            self.threads = allowed if largest >= PARALLEL_MIN_WORK else 1\n",
       "            self.threads = allowed if largest > PARALLEL_MIN_WORK else 1\n")],
     ["tests/test_step_internals.py"]),
    ("progress_drops_last_metric", "fit's per-epoch line leaves out the last logged value",
     [("xpann/callbacks.py",
       '        values = " - ".join(f"{name}: {value:.4f}" for name, value in (logs or {}).items())\n',
       '        values = " - ".join(f"{name}: {value:.4f}" for name, value in list((logs or {}).items())[:-1])\n')],
     ["tests/test_model.py"]),
    ("adam_epsilon_moved", "Adam adds epsilon before the bias correction of sqrt(v), not after",
     [("xpann/optimizers.py",
       "        xp.sqrt(v, out=t)\n        t /= (1 - self.beta_2**step) ** 0.5\n        t += self.epsilon\n",
       "        xp.sqrt(v, out=t)\n        t += self.epsilon\n        t /= (1 - self.beta_2**step) ** 0.5\n")],
     ["tests/test_optimizers.py", "tests/test_fused_updates.py"]),
    ("adam_epsilon_moved_everywhere", "the same move in the array code and in the numba kernel alike",
     [("xpann/optimizers.py",
       "        xp.sqrt(v, out=t)\n        t /= (1 - self.beta_2**step) ** 0.5\n        t += self.epsilon\n",
       "        xp.sqrt(v, out=t)\n        t += self.epsilon\n        t /= (1 - self.beta_2**step) ** 0.5\n"),
      ("xpann/backend/_fused_kernels.py",
       "        t = numpy.sqrt(vi)\n        t = t / bias2\n        t = t + eps\n",
       "        t = numpy.sqrt(vi)\n        t = t + eps\n        t = t / bias2\n")],
     ["tests/test_optimizers.py", "tests/test_fused_updates.py"]),
    ("reduce_lr_ignores_min_delta", "ReduceLROnPlateau compares with min_delta 0 whatever it is given",
     [("xpann/callbacks.py",
       "                 min_lr=0.0, mode=\"auto\", verbose=0):\n        super().__init__(monitor, mode, min_delta)\n",
       "                 min_lr=0.0, mode=\"auto\", verbose=0):\n        super().__init__(monitor, mode, 0.0)\n")],
     ["tests/test_callbacks.py"]),
    ("checkpoint_epoch_from_0", "ModelCheckpoint formats {epoch} from 0 instead of 1",
     [("xpann/callbacks.py",
       "        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))\n",
       "        path = self.filepath.format(epoch=epoch, **(logs or {}))\n")],
     ["tests/test_callbacks.py"]),
    ("forced_threads_capped", "XPANN_BLAS_THREADS=n is capped at 1 thread",
     [("xpann/backend/_threads.py",
       "        elif forced is not None:\n            self.threads = forced\n",
       "        elif forced is not None:\n            self.threads = min(forced, 1)\n")],
     ["tests/test_step_internals.py"]),
    ("adaptive_rounding", "the adaptive policy counts half a core of other work as busy, not a third",
     [("xpann/backend/_threads.py",
       "        return self._usable - int(others + 0.7)\n",
       "        return self._usable - int(others + 0.5)\n")],
     ["tests/test_step_internals.py"]),
    ("embedding_init_uniform", "CategoryEmbedding tables start uniform (std 1) instead of N(0, 1)",
     [("xpann/layers/_embedding.py",
       'embeddings_initializer="normal"',
       'embeddings_initializer=initializers.RandomUniform(-3**0.5, 3**0.5)')],
     ["tests/test_normalization_embedding.py"]),
    ("he_normal_fan_out", "he_normal scales by fan_out instead of fan_in",
     [("xpann/initializers.py",
       'HeNormal = _preset("HeNormal", 2.0, "fan_in", "normal",',
       'HeNormal = _preset("HeNormal", 2.0, "fan_out", "normal",')],
     ["tests/test_initializers.py"]),
]


def copy_project(target):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("xpann", "cli", "tests"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore, symlinks=True)
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")
    links = target.parent / "links"
    links.mkdir()
    (links / "xpann_cli").symlink_to(target / "cli", target_is_directory=True)
    return links


def environment(copy, links):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), str(links)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NUMBA_CACHE_DIR"] = str(copy.parent / "numba-cache")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    env.pop("XPANN_BLAS_THREADS", None)
    env.pop("XPANN_BACKEND", None)
    return env


def check_imports(copy, env):
    """The copy's xpann and xpann_cli are the ones imported, not the editable install's."""
    code = "import xpann, xpann_cli, os; print(os.path.realpath(xpann.__file__)); print(os.path.realpath(xpann_cli.__file__))"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True)
    paths = out.stdout.split()
    real = os.path.realpath(copy)
    if not all(path.startswith(real + os.sep) for path in paths):
        raise SystemExit(f"the copy is not what gets imported: {paths}")


def run_tests(copy, env, files):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                             "-rf", "--tb=no", *files], cwd=copy, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.MULTILINE)))
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    return result.returncode, failed, summary, time.perf_counter() - started


def plant(copy, mutant):
    """Apply the mutant's edits to the copy; returns {path: original text} to put back."""
    name, _, edits, _ = mutant
    originals = {}
    for path, old, new in edits:
        file = copy / path
        text = file.read_text(encoding="utf-8")
        originals.setdefault(path, text)
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"{name}: the text to replace occurs {count} times in {path}; update the mutant")
        file.write_text(text.replace(old, new), encoding="utf-8")
    return originals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    today = datetime.date.today().isoformat()
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / f"mutation_check_{today}.md"))
    parser.add_argument("--only", action="append", help="run only these mutants (by name)")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if not args.only or m[0] in args.only]

    rows = []
    with tempfile.TemporaryDirectory(prefix="xpann-mutation-") as tmp:
        copy = pathlib.Path(tmp) / "project"
        links = copy_project(copy)
        env = environment(copy, links)
        check_imports(copy, env)
        files = sorted({file for mutant in mutants for file in mutant[3]})
        code, failed, summary, seconds = run_tests(copy, env, files)
        print(f"baseline ({' '.join(files)}): {summary} [{seconds:.1f} s]", flush=True)
        if code != 0:
            raise SystemExit(f"the unmutated copy fails its tests, fix that first: {failed}")
        for mutant in mutants:
            name, what, edits, test_files = mutant
            paths = sorted({path for path, _, _ in edits})
            mutant_env = dict(env)
            if any("kernels" in path for path in paths):  # numba's on-disk cache must not serve the old kernels
                mutant_env["NUMBA_CACHE_DIR"] = str(pathlib.Path(tmp) / f"numba-{name}")
            originals = plant(copy, mutant)
            try:
                code, failed, summary, seconds = run_tests(copy, mutant_env, test_files)
            finally:
                for path, text in originals.items():
                    (copy / path).write_text(text, encoding="utf-8")
            status = "killed" if code == 1 else "survived" if code == 0 else f"error (pytest exit {code})"
            print(f"{name}: {status} ({len(failed)} failing) [{seconds:.1f} s]", flush=True)
            rows.append((name, what, ", ".join(paths), test_files, status, failed, summary, seconds))

    survived = [row[0] for row in rows if row[4] != "killed"]
    lines = [
        f"# Mutation check, {today}",
        "",
        f"`python benchmarks/mutation_check.py`: {len(rows)} mutants planted one at a time in a copy of the "
        "project; each runs the listed test files against that copy (PYTHONPATH = the copy and a symlink "
        "`xpann_cli -> <copy>/cli`; one process, OPENBLAS_NUM_THREADS=1). The unmutated copy passed the same "
        "files first.",
        "",
        f"Result: {len(rows) - len(survived)} of {len(rows)} killed"
        + (f"; survived: {', '.join(survived)}." if survived else "."),
        "",
        "| mutant | bug planted | file | test files | result | killed by (failing tests) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, what, path, test_files, status, failed, summary, seconds in rows:
        shown = ", ".join(f"`{test.split('::', 1)[1] if '::' in test else test}`" for test in failed[:6])
        if len(failed) > 6:
            shown += f" and {len(failed) - 6} more"
        lines.append(f"| {name} | {what} | {path} | {', '.join(test_files)} | {status} | "
                     f"{shown or '-'} ({summary}) | {seconds:.1f} |")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
