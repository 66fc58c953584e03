"""xpann.sklearn.MLPClassifier against scikit-learn's MLPClassifier with the same parameters:
fit time and test accuracy on the bundled data sets and on a 100k-row synthetic set.

Both get the same standardised arrays, the same parameters (hidden_layer_sizes, solver, alpha,
batch_size, learning_rate_init, max_iter, tol, n_iter_no_change, random_state) and the same
train/test split; the two fits take turns, repeat after repeat, so they share the machine's noise.
Each figure is a median over the repeats; the ratio is scikit-learn's fit time over xpann's
(above 1: xpann is faster). Foreign CPU load (the 1-minute load average) is recorded per sample.

    python benchmarks/compare_sklearn.py                 # results to benchmarks/results/
    python benchmarks/compare_sklearn.py --quick --no-save
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import time
import warnings

import numpy
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from threadpoolctl import threadpool_limits

import xpann
from xpann import benchmarking
from xpann.sklearn import MLPClassifier as XpannMLP

PARAMETERS = {"hidden_layer_sizes": (100,), "solver": "adam", "alpha": 1e-4, "batch_size": "auto",
              "learning_rate_init": 1e-3, "tol": 1e-4, "n_iter_no_change": 10}


def synthetic(rows, seed=0):
    """A seeded 20-feature, 5-class problem whose classes follow a random two-layer network."""
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(rows, 20))
    hidden = numpy.tanh(x @ rng.normal(size=(20, 16)))
    y = (hidden @ rng.normal(size=(16, 5)) + 0.3 * rng.normal(size=(rows, 5))).argmax(axis=1)
    return x, y


def data_sets(quick):
    sets = {}
    for name in ("iris", "wine", "breast_cancer"):
        data = xpann.datasets.load(name)
        sets[name] = (data.x, data.y, 200)
    rows = 10_000 if quick else 100_000
    sets[f"synthetic {rows // 1000}k"] = (*synthetic(rows), 20 if quick else 50)
    return sets


def fit_once(cls, x_train, y_train, x_test, y_test, max_iter, seed):
    model = cls(**PARAMETERS, max_iter=max_iter, random_state=seed)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "accuracy": float(model.score(x_test, y_test)), "epochs": int(model.n_iter_),
            "load_average": load}


def measure(name, x, y, max_iter, repeats):
    x = (x - x.mean(axis=0)) / numpy.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_test = x_train.astype(numpy.float32), x_test.astype(numpy.float32)
    samples = {"xpann": [], "sklearn": []}
    for repeat in range(repeats):
        order = [("xpann", XpannMLP), ("sklearn", SklearnMLP)]
        for label, cls in order if repeat % 2 == 0 else order[::-1]:
            samples[label].append(fit_once(cls, x_train, y_train, x_test, y_test, max_iter, seed=repeat))
    summary = {}
    for label, runs in samples.items():
        summary[label] = {"seconds": statistics.median(r["seconds"] for r in runs),
                          "accuracy": statistics.median(r["accuracy"] for r in runs),
                          "epochs": statistics.median(r["epochs"] for r in runs),
                          "samples_per_second": statistics.median(r["epochs"] * len(x_train) / r["seconds"]
                                                                  for r in runs),
                          "runs": runs}
    return {"data": name, "train_rows": len(x_train), "test_rows": len(x_test), "features": x.shape[1],
            "classes": int(len(numpy.unique(y))), "max_iter": max_iter, "libraries": summary,
            "fit_time_ratio": summary["sklearn"]["seconds"] / summary["xpann"]["seconds"]}


def machine():
    import sklearn

    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": benchmarking.cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "xpann": xpann.__version__, "scikit-learn": sklearn.__version__}


def markdown(document):
    env = document["machine"]
    lines = ["# xpann.sklearn.MLPClassifier against scikit-learn's MLPClassifier", "",
             f"- Date: {env['date']}; machine: {env['cpu']}, {env['cores']} cores (shared, noisy: compare ratios)",
             f"- Versions: xpann {env['xpann']}, scikit-learn {env['scikit-learn']}, numpy {env['numpy']}, "
             f"Python {env['python']}; BLAS threads: {document['threads']}",
             f"- Parameters (both): {PARAMETERS}, max_iter per row below; 75/25 stratified split; medians of "
             f"{document['repeats']} interleaved repeats (seeds 0..{document['repeats'] - 1})", "",
             "| data | train rows | max_iter | xpann fit s | sklearn fit s | sklearn / xpann time | xpann accuracy "
             "| sklearn accuracy | xpann epochs | sklearn epochs | load avg (min-max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in document["results"]:
        a, b = r["libraries"]["xpann"], r["libraries"]["sklearn"]
        loads = [run["load_average"] for lib in r["libraries"].values() for run in lib["runs"]]
        lines.append(f"| {r['data']} | {r['train_rows']:,} | {r['max_iter']} | {a['seconds']:.2f} | {b['seconds']:.2f} "
                     f"| {r['fit_time_ratio']:.2f}x | {a['accuracy']:.4f} | {b['accuracy']:.4f} | {a['epochs']:.0f} "
                     f"| {b['epochs']:.0f} | {min(loads):.1f}-{max(loads):.1f} |")
    lines += ["", "Epochs differ where the stopping rule (tol, n_iter_no_change) ends the two runs at different "
              "epochs; the time per epoch is the fairer speed figure: samples/s (epochs x rows / fit time):", "",
              "| data | xpann samples/s | sklearn samples/s | ratio |", "|---|---|---|---|"]
    for r in document["results"]:
        a, b = r["libraries"]["xpann"]["samples_per_second"], r["libraries"]["sklearn"]["samples_per_second"]
        lines.append(f"| {r['data']} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both (default 1)")
    parser.add_argument("--quick", action="store_true", help="10k synthetic rows, 3 repeats")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    results = []
    with threadpool_limits(args.threads):
        for name, (x, y, max_iter) in data_sets(args.quick).items():
            results.append(measure(name, x, y, max_iter, repeats))
            print(f"{name}: sklearn/xpann fit time {results[-1]['fit_time_ratio']:.2f}x", flush=True)
    document = {"machine": machine(), "threads": args.threads, "repeats": repeats, "results": results}
    text = markdown(document)
    print(text)
    if not args.no_save:
        stem = os.path.join(args.out, f"compare_sklearn_{document['machine']['date'][:10]}")
        with open(stem + ".json", "w") as stream:
            json.dump(document, stream, indent=1)
        with open(stem + ".md", "w") as stream:
            stream.write(text)


if __name__ == "__main__":
    main()
