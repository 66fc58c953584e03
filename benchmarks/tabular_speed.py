"""How fast a CSV becomes a feature matrix: ``read_table``, ``id_columns``,
``TabularPreprocessor.fit`` and ``transform`` on a generated (seeded) file of 500,000 rows, 16
number columns and 2 text columns (about 64 MB), each stage timed on its own.

    python benchmarks/tabular_speed.py                       # 3 runs, results/tabular_speed_<date>.{json,md}
    python benchmarks/tabular_speed.py --label before        # results/tabular_speed_<date>_before.{json,md}
    python benchmarks/tabular_speed.py --rows 50000 --repeats 1 --no-save

Each run is a fresh process (this script, re-entered as a worker) that reads, finds the ID
columns, fits and transforms once, so its peak RSS (``resource.getrusage``) is the peak of the
whole pipeline; figures are medians over the runs. The worker also times ``pandas.read_csv`` of
the same file with default typing, for scale, and prints a SHA-256 of the transformed matrix and
of the fitted preprocessing, so that two versions of the code can be checked to give the same
result on the same file.
"""

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cpu_model():
    from xpann.benchmarking import cpu_model  # imported where asked: the stages run in fresh processes

    return cpu_model()
RESULTS = ROOT / "benchmarks" / "results"
STAGES = ("read_table", "id_columns", "fit", "transform")
# read_table(numbers=True): number columns come as float64 (the fast path); an older read_table
# without the option is called without it.
READ_OPTIONS = {}


def generate(path, rows, seed=0):
    """A CSV of ``rows`` rows: 16 number columns (decimals, whole numbers, a few empty cells,
    an increasing ``row_id``), a text column of 10 categories and one of about 30,000."""
    import numpy
    import pandas

    rng = numpy.random.default_rng(seed)
    columns = {"row_id": numpy.arange(1, rows + 1)}
    for i in range(15):
        if i % 5 == 4:
            values = rng.integers(0, 1000, rows).astype(float)  # whole numbers
        else:
            values = numpy.round(rng.normal(100 * (i + 1), 10 + i, rows), 3)
        values[rng.random(rows) < 0.01] = numpy.nan  # 1% empty cells
        columns[f"x{i:02d}"] = values
    cities = numpy.array(["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Baku", "Riga", "Suva", "Lomé", "Bern"])
    columns["city"] = cities[rng.integers(0, len(cities), rows)]
    columns["customer"] = numpy.char.add("C", rng.integers(10000, 40000, rows).astype(str))
    frame = pandas.DataFrame(columns)
    for name in frame.columns[1:16]:
        if frame[name].dropna().mod(1).eq(0).all():
            frame[name] = frame[name].astype("Int64")  # written as 17, not 17.0
    frame.to_csv(path, index=False, lineterminator="\n")


def worker(path):
    """Time each stage once on ``path``; print one JSON line."""
    import resource
    import warnings

    import numpy
    import pandas

    from xpann.preprocessing import TabularPreprocessor, id_columns
    from xpann.tabular._csv import read_table

    import inspect

    if "numbers" in inspect.signature(read_table).parameters:
        READ_OPTIONS["numbers"] = True
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        table = read_table(path, **READ_OPTIONS)
        times["read_table"] = time.perf_counter() - start
        frame = table.frame
        start = time.perf_counter()
        ids = id_columns(frame)
        times["id_columns"] = time.perf_counter() - start
        start = time.perf_counter()
        preprocessor = TabularPreprocessor().fit(frame, ids=ids)
        times["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        x = preprocessor.transform(frame, warn_truncated=False)
        times["transform"] = time.perf_counter() - start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del table, frame
    start = time.perf_counter()
    pandas.read_csv(path)
    plain = time.perf_counter() - start
    config = json.dumps(preprocessor.to_config(), sort_keys=True)
    print(json.dumps({
        "seconds": times, "pandas_read_csv_seconds": plain, "read_options": READ_OPTIONS,
        "rss_start_mb": rss_start / 1024, "rss_peak_mb": rss_peak / 1024,
        "shape": list(x.shape), "ids": ids, "warnings": [str(w.message) for w in caught],
        "x_sha256": hashlib.sha256(numpy.ascontiguousarray(x).tobytes()).hexdigest(),
        "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
    }))


def markdown(result):
    size = result["file_mb"]
    lines = [
        f"# Reading and preprocessing a CSV ({result['date']}{', ' + result['label'] if result['label'] else ''})",
        "",
        f"{result['rows']:,} rows, 16 number columns and 2 text columns (10 and ~30,000 categories), "
        f"{size:.1f} MB; median of {result['repeats']} runs, each a fresh process. "
        f"Machine: {result['cpu']}, {result['cores']} cores, shared with other work (load average "
        f"{result['load_before']} before, {result['load_after']} after), so figures swing from run to run.",
        "",
        "| stage | seconds (median) | all runs | rows/s | MB/s of CSV |",
        "|---|---|---|---|---|",
    ]
    for stage in STAGES + ("total",):
        seconds = result["median_seconds"][stage]
        runs = ", ".join(f"{s:.3f}" for s in result["seconds"][stage])
        lines.append(f"| {stage} | {seconds:.3f} | {runs} | {result['rows'] / seconds:,.0f} | {size / seconds:.1f} |")
    lines += [
        "",
        f"`pandas.read_csv` of the same file (default typing), for scale: {result['pandas_read_csv_seconds']:.3f} s.",
        f"Peak RSS of the pipeline: {result['rss_peak_mb']:.0f} MB ({result['rss_start_mb']:.0f} MB after the "
        f"imports; {result['rss_peak_mb'] / size:.1f} x the file).",
        f"Output: {result['shape'][0]:,} x {result['shape'][1]} float32, sha256 {result['x_sha256'][:16]}...; "
        f"fitted preprocessing sha256 {result['config_sha256'][:16]}...; ID columns: "
        f"{', '.join(result['ids']) or 'none'}; warnings: {len(result['warnings'])}.",
        f"read_table options: {result['read_options'] or 'none (every cell as text)'}.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="", help="suffix of the result files (before, after, ...)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data.csv")
        generate(path, args.rows)
        size = os.path.getsize(path) / 1e6
        print(f"{path}: {size:.1f} MB, {args.rows:,} rows", flush=True)
        load_before = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        runs = []
        for repeat in range(args.repeats):
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            output = subprocess.run([sys.executable, __file__, "--worker", path], check=True, env=env,
                                    capture_output=True, text=True).stdout
            run = json.loads(output.strip().splitlines()[-1])
            run["seconds"]["total"] = sum(run["seconds"][s] for s in STAGES)
            print(f"run {repeat + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in run["seconds"].items())
                  + f"; peak RSS {run['rss_peak_mb']:.0f} MB", flush=True)
            runs.append(run)
        load_after = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    median = {stage: statistics.median(r["seconds"][stage] for r in runs) for stage in STAGES + ("total",)}
    last = runs[-1]
    result = {
        "date": datetime.date.today().isoformat(), "label": args.label, "rows": args.rows, "file_mb": size,
        "repeats": args.repeats, "cpu": _cpu_model(), "cores": os.cpu_count(),
        "python": platform.python_version(), "load_before": load_before, "load_after": load_after,
        "seconds": {stage: [r["seconds"][stage] for r in runs] for stage in STAGES + ("total",)},
        "median_seconds": median,
        "mb_per_second": {stage: size / median[stage] for stage in median},
        "rows_per_second": {stage: args.rows / median[stage] for stage in median},
        "pandas_read_csv_seconds": statistics.median(r["pandas_read_csv_seconds"] for r in runs),
        "rss_peak_mb": max(r["rss_peak_mb"] for r in runs), "rss_start_mb": last["rss_start_mb"],
        "shape": last["shape"], "ids": last["ids"], "warnings": last["warnings"],
        "x_sha256": last["x_sha256"], "config_sha256": last["config_sha256"],
        "read_options": last.get("read_options", {}),
        "same_result_every_run": len({(r["x_sha256"], r["config_sha256"]) for r in runs}) == 1,
    }
    try:
        import numpy
        import pandas
        import pyarrow
        result["versions"] = {"numpy": numpy.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}
    except ImportError:
        pass
    text = markdown(result)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = f"tabular_speed_{result['date']}" + (f"_{args.label}" if args.label else "")
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(text)
        print(f"Wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
