"""Candidate defaults for ``TabularModel``, measured on the tables of ``tabular_quality.py``: each
variant is a set of TabularModel options, fitted on the same 80% splits and scored on the same 20%.

    python benchmarks/tabular_defaults.py --out benchmarks/results/ [--splits 3] [--variants a,b]

Writes ``tabular_defaults_<date>.{json,md}``: the mean score per table and variant, the mean rank
of each variant, and how many tables each variant wins or loses against the current defaults.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tabular_quality as quality  # noqa: E402
from xpann import initializers, layers  # noqa: E402
from xpann.layers._base import Layer  # noqa: E402
from xpann.preprocessing import _features as features_module  # noqa: E402
from xpann.model import Sequential  # noqa: E402
from xpann.tabular import _network as network_module  # noqa: E402

VARIANTS = {
    "defaults": {},
    "cosine": {"lr_schedule": "cosine"},
    "batch 128": {"batch_size": 128},
    "cosine + lr 3e-3": {"lr_schedule": "cosine", "lr": 3e-3},
    "cosine + wd 1e-4 + dropout 0.1": {"lr_schedule": "cosine", "weight_decay": 1e-4, "dropout": 0.1},
    "cosine + 256-256": {"lr_schedule": "cosine", "hidden": (256, 256)},
    "cosine + dropout 0.1": {"lr_schedule": "cosine", "dropout": 0.1},
    "cosine + wd 1e-4": {"lr_schedule": "cosine", "weight_decay": 1e-4},
    "cosine + wd 1e-3": {"lr_schedule": "cosine", "weight_decay": 1e-3},
    "cosine + dropout 0.2": {"lr_schedule": "cosine", "dropout": 0.2},
    "epochs by 5 folds": {"epochs": "cv"},
    "epochs by 5 folds + cosine": {"epochs": "cv", "lr_schedule": "cosine"},
    "embeddings of width 4": {"embedding_width": 4},
    "embeddings of width 8": {"embedding_width": 8},
    "gaps filled only": {"missing": "fill"},
    "robust scaling + smooth clipping": {"scaling": "robust"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "robust + label smoothing 0.1": {"scaling": "robust", "label_smoothing": 0.1},
    "per-feature scale": {"feature_scale": 1.0},
    "per-feature scale (lr x6)": {"feature_scale": 6.0},
    "one hidden layer of 128": {"hidden": (128,)},
    "wd 1e-3": {"weight_decay": 1e-3},
    "dropout 0.2": {"dropout": 0.2},
    "lr 3e-3": {"lr": 3e-3},
    "batch 64": {"batch_size": 64},
    "one-hot up to 4096 categories": {"one_hot_max": 4096},
}
PREPROCESSING = ("one_hot_max", "missing", "scaling")  # TabularPreprocessor's arguments, in order
PATCHES = {"embedding_width", "feature_scale", *PREPROCESSING}  # not TabularModel options: patched in


class FeatureScale(Layer):
    """A candidate: RealMLP's learnable per-feature scale before the first Dense layer,
    y = x * (1 + f u) with u from 0, so that Adam moves the scale f times as fast (its lr factor)."""

    keeps_units = True

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def parameter_specs(self):
        return [("u", (self.input_dim,), initializers.Zeros(), self.input_dim, self.input_dim)]

    def forward(self, node, x, training):
        scale = 1 + self.factor * node.params["u"]
        if not training:
            return x * scale, None

        def backprop(dy):
            node.xp.sum(dy * x, axis=0, out=node.grads["u"])
            node.grads["u"] *= self.factor
            return dy * scale if node.need_input_grad else None

        return x * scale, backprop


def with_feature_scale(factor):
    """A Sequential for build_network that puts a FeatureScale after the embedding (or first)."""

    def sequential(stack, **options):
        at = 1 if isinstance(stack[0], layers.CategoryEmbedding) else 0
        return Sequential(stack[:at] + [FeatureScale(factor)] + stack[at:], **options)

    return sequential
TABLES = ("titanic", "Aids2", "InstEval", "diamonds", "movies", "Cars93", "mtcars", "economics", "penguins",
          "iris", "wine", "breast_cancer", "diabetes")


def run(tables, variants, splits):
    fits = []
    for table in tables:
        frame, target, task, _ = quality.load_table(table)
        for seed in range(splits):
            train, test = quality.split(frame, target, task, seed)
            for name in variants:
                options = {k: v for k, v in VARIANTS[name].items() if k not in PATCHES}
                width = VARIANTS[name].get("embedding_width")
                original = features_module.embedding_width, features_module.TabularPreprocessor.__init__.__defaults__
                if width is not None:
                    features_module.embedding_width = lambda codes, width=width: width
                features_module.TabularPreprocessor.__init__.__defaults__ = tuple(
                    VARIANTS[name].get(key, default) for key, default in zip(PREPROCESSING, original[1]))
                if "feature_scale" in VARIANTS[name]:
                    network_module.Sequential = with_feature_scale(VARIANTS[name]["feature_scale"])
                start = time.perf_counter()
                try:
                    value, extra = quality._xpann(train, test, target, task, seed, **options)
                finally:
                    features_module.embedding_width = original[0]
                    features_module.TabularPreprocessor.__init__.__defaults__ = original[1]
                    network_module.Sequential = Sequential
                fits.append({"table": table, "variant": name, "split": seed, "score": value,
                             "seconds": time.perf_counter() - start, "load_average": os.getloadavg()[0], **extra})
        print(table, flush=True)
    return fits


def markdown(fits, variants, tables, splits):
    mean = {(t, v): statistics.mean(f["score"] for f in fits if f["table"] == t and f["variant"] == v)
            for t in tables for v in variants}
    seconds = {v: statistics.mean(f["seconds"] for f in fits if f["variant"] == v) for v in variants}
    rank = {v: 0.0 for v in variants}
    for t in tables:
        ordered = sorted(variants, key=lambda v: -mean[t, v])
        for v in variants:
            better = sum(mean[t, w] > mean[t, v] for w in variants)
            ties = sum(mean[t, w] == mean[t, v] for w in variants)
            rank[v] += better + (ties + 1) / 2
        del ordered
    lines = [f"# Candidate TabularModel defaults ({datetime.date.today()})", "",
             f"Held-out accuracy (classification) or r2 (regression), {splits} seeded 80/20 splits per table, as "
             "`tabular_quality.py` makes them; each variant a set of TabularModel options over the defaults. "
             "Machine shared with other work: seconds are rough, scores do not depend on load.", "",
             "| table | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for t in tables:
        best = max(mean[t, v] for v in variants)
        cells = [f"**{mean[t, v]:.4f}**" if mean[t, v] == best else f"{mean[t, v]:.4f}" for v in variants]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | options | mean rank | tables above / below the defaults | mean fit s |", "|---|---|---|---|---|"]
    for v in variants:
        above = sum(mean[t, v] > mean[t, "defaults"] for t in tables)
        below = sum(mean[t, v] < mean[t, "defaults"] for t in tables)
        lines.append(f"| {v} | `{VARIANTS[v]}` | {rank[v] / len(tables):.2f} | {above} / {below} | {seconds[v]:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--name", default=None, help="result file stem (default tabular_defaults_<date>)")
    args = parser.parse_args()
    tables, variants = args.tables.split(","), args.variants.split(",")
    if "defaults" not in variants:
        variants.insert(0, "defaults")
    fits = run(tables, variants, args.splits)
    text = markdown(fits, variants, tables, args.splits)
    print(text)
    stem = os.path.join(args.out, args.name or f"tabular_defaults_{datetime.date.today()}")
    with open(stem + ".json", "w") as stream:
        json.dump({"variants": {v: {k: list(o) if isinstance(o, tuple) else o for k, o in VARIANTS[v].items()}
                                for v in variants}, "fits": fits}, stream, indent=1)
    with open(stem + ".md", "w") as stream:
        stream.write(text)


if __name__ == "__main__":
    main()
