"""``TabularPreprocessor``: per-column imputation, scaling, one-hot encoding and category codes,
learned on the training rows and applied to new ones."""

import math

import numpy

from ._cells import STRAY_FRACTION, _as_text, _parse_dates, _parse_numbers, _text
from ._columns import _kind, id_columns
from ._config import _check_version
from ._messages import _cell, _check_range, _distinct_cells, _first_beyond_float32, _shown, _warn, _where

MISSING_RULES = ("indicate", "fill")  # indicate: a column that had gaps in training gets a missing
# category (text) or a 0/1 missing indicator beside its filled value (numbers, dates); fill: filled only
MISSING_NAME = "(missing)"
SCALINGS = ("robust", "standard")  # robust: (x - median) / IQR, smoothly clipped to +-CLIP; standard: (x - mean) / sd
CLIP = 3.0
ONE_HOT_MAX = 16  # a text column with at most this many categories is one-hot, with more it is coded
MAX_CODES = 1 << 24  # category codes travel as float32, exact up to 2**24
MISSING_CODE, UNKNOWN_CODE = 0, 1  # the codes of a coded column below its categories' (2, 3, ...)
MAX_EMBEDDING_WIDTH = 4  # measured twice: 4 scored at or above 8, 16 and 32 wherever the width mattered
MAX_STORED_WIDTH = 1024  # what a model file may hold (files from before the cap of 4 hold 16)
# New rows of a number or date column may hold this share of other values, read as missing (more is an error).
TRANSFORM_STRAY_FRACTION = 0.5
_KIND_WORDS = {"numeric": "numbers", "date": "dates (YYYY-MM-DD)"}


def _stray_cells(series, name, bad, kind, filled=None, limit=STRAY_FRACTION):
    """Cells of a number or date column that are not one: read as missing with a warning when they
    are at most ``limit`` of the filled cells, else a ValueError naming the first."""
    count = int(bad.sum())
    if not count:
        return
    positions = numpy.flatnonzero(bad)
    if count > limit * int(series.notna().sum()):
        raise ValueError(f"Column {name!r} should hold {kind} but holds {_cell(series.iloc[positions[0]])} "
                         f"({_where(series.index, positions[0])}).")
    values = _distinct_cells(series, positions)
    fill = f" (filled with {filled})" if filled else ""
    _warn(f"Column {name!r} holds {kind} except {_shown(values)} ({count} cell(s), first on "
          f"{_where(series.index, positions[0])}); read as missing{fill}.", name)


def smooth_clip(z, bound):
    """z / sqrt(1 + (z / bound)^2): about z near 0, tending to +-bound (overflow-free by hypot)."""
    return z / numpy.hypot(1.0, z / bound)


def _standardised(values, spec, series):
    """(values - mean) / scale, smoothly clipped to +-spec["clip"] where the column has one, checked
    to fit float32."""
    scaled = (values - spec["mean"]) / spec["scale"]
    if spec.get("clip"):
        return smooth_clip(scaled, spec["clip"])
    position = _first_beyond_float32(scaled)
    if position is not None:
        raise ValueError(f"Value {str(series.iloc[position]).strip()} in column {spec['name']!r} "
                         f"({_where(series.index, position)}) is too far from the training values (mean "
                         f"{spec['mean']:.4g}, spread {spec['scale']:.4g}) to be represented in float32.")
    return scaled


def embedding_width(codes):
    """The embedding width for a coded column of ``codes`` codes: min(4, round(1.6 codes^0.56))."""
    return max(1, min(MAX_EMBEDDING_WIDTH, round(1.6 * codes ** 0.56)))


def _is_category_dtype(series):
    import pandas

    return isinstance(series.dtype, pandas.CategoricalDtype)


def _category_keys(series):
    """The text keys of a column's categories (missing stays missing), whatever its dtype."""
    if _is_category_dtype(series):
        series = series.astype(object)
    return _as_text(series)


class TabularPreprocessor:
    """Learn per-column imputation, scaling and category encodings on training rows; apply them.

    A text (or true/false, or pandas category) column with at most ``one_hot_max`` categories is
    one-hot encoded (gaps filled with the most frequent one; an unseen category is all zeros).
    One with more becomes one integer code per row for a ``CategoryEmbedding``: 0 for missing,
    1 for unknown (unseen in training, or seen only once there), 2.. for each category seen at
    least twice. A number or date column is centred and scaled: with ``scaling="robust"`` (the
    default) z = (x - median) / IQR (half the range where the IQR is 0), then smoothly clipped,
    z / sqrt(1 + (z / 3)^2), so outliers end near +-3; with "standard", (x - mean) / sd (a spec's
    "mean" is the centre either way). After ``fit``: ``columns`` (the specs used, in order), ``dropped`` ({column:
    reason}), ``missing`` ({column: count of empty cells in the training rows}).
    """

    def __init__(self, one_hot_max=ONE_HOT_MAX, missing="indicate", scaling="robust"):
        if isinstance(one_hot_max, bool) or not isinstance(one_hot_max, int) or one_hot_max < 2:
            raise ValueError(f"one_hot_max must be a whole number >= 2, got {one_hot_max!r}.")
        if missing not in MISSING_RULES:
            raise ValueError(f"missing must be one of {', '.join(MISSING_RULES)}, got {missing!r}.")
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}.")
        self.scaling = scaling
        self.one_hot_max = one_hot_max
        self.missing_rule = missing
        self.columns = None
        self.dropped = {}
        self.missing = {}
        self.truncated = {}  # {column: categories before the cut} of files from xpann before coded columns
        self.rows = 0

    @property
    def fitted(self):
        return self.columns is not None

    def fit(self, frame, columns=None, drop=(), keep=(), ids=None, categorical=()):
        """Learn from the rows of ``frame`` (a pandas DataFrame); ``columns`` defaults to all.

        ``drop``: columns to leave out ("dropped on request"). ``keep``: columns never dropped as
        IDs. ``ids``: {column: reason} of ID columns found beforehand with ``id_columns`` (on all
        the rows, before a split); by default they are looked for in ``frame``. ``categorical``:
        columns encoded as categories even where their values are numbers (codes, IDs kept).
        """
        columns = list(frame.columns if columns is None else columns)
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"No column {_shown(absent)} in the data; its columns are "
                             f"{', '.join(map(str, frame.columns))}.")
        for names, verb in ((drop, "drop"), (keep, "keep"), (categorical, "encode as categories")):
            absent = [c for c in names if c not in columns]
            if absent:
                raise ValueError(f"Cannot {verb} column {_shown(absent)}: not a feature column; the feature "
                                 f"columns are {', '.join(map(str, columns))}.")
        both = [c for c in drop if c in keep]
        if both:
            raise ValueError(f"Column {_shown(both)} is both to drop and to keep; choose one.")
        if len(frame) == 0:
            raise ValueError("There are no rows to learn the preprocessing from.")
        if ids is None:
            ids = id_columns(frame, [c for c in columns if c not in drop], keep)
        specs, dropped, missing = [], {}, {}
        for name in columns:
            if name in drop:
                dropped[name] = "dropped on request"
                continue
            series = frame[name]
            count = int(series.isna().sum())
            if count:
                missing[name] = count
            present = series.dropna()
            if present.empty:
                dropped[name] = "every value is missing"
                continue
            if name in ids and name not in keep:
                dropped[name] = ids[name]
                continue
            declared = name in categorical or _is_category_dtype(series)
            kind, parsed = ("categorical", None) if declared else _kind(series)
            if kind == "categorical":
                spec, reason = self._fit_categorical(name, present)
            else:
                spec, reason = self._fit_numeric(name, series, kind, parsed, self.scaling)
            if spec is not None and self.missing_rule == "indicate" and spec["kind"] != "coded":
                gaps = count if spec["kind"] == "categorical" else int(numpy.isnan(parsed[0]).sum())
                if gaps:
                    spec["missing"] = True  # coded columns have their missing code already
            if reason:
                dropped[name] = reason
            else:
                specs.append(spec)
        if not specs:
            detail = "; ".join(f"{k!r}: {v}" for k, v in dropped.items())
            raise ValueError(f"No usable feature columns are left ({detail or 'there were none'}).")
        self.columns, self.dropped, self.missing = specs, dropped, missing
        self.rows = len(frame)
        return self

    @staticmethod
    def _fit_numeric(name, series, kind, parsed, scaling):
        values, bad = parsed
        _stray_cells(series, name, bad, _KIND_WORDS[kind])
        _check_range(series, name, values)
        observed = values[~numpy.isnan(values)]
        if observed.size == 0:
            return None, "every value is missing"
        low = observed.min()
        if low == observed.max():
            shown = _text(low) if kind == "numeric" else str(series.dropna().iloc[0]).strip()
            return None, f"constant (every value is {shown})"
        median = float(numpy.median(observed))
        filled = numpy.where(numpy.isnan(values), median, values)
        if scaling == "robust":  # the observed values' median and IQR (half the range where the IQR is 0)
            low, high = numpy.quantile(observed, [0.25, 0.75])
            center, scale = median, float(high - low) or 0.5 * float(observed.max() - observed.min())
        else:
            center, scale = float(filled.mean()), float(filled.std())
        if not (math.isfinite(center) and math.isfinite(scale)):
            raise ValueError(f"Column {name!r} holds numbers too large to standardise in float64; rescale it.")
        spec = {"name": name, "kind": kind, "fill": median, "mean": center, "scale": scale if scale > 0 else 1.0}
        if scaling == "robust":
            spec["clip"] = CLIP
        return spec, None

    def _fit_categorical(self, name, present):
        counts = _category_keys(present).value_counts()
        if len(counts) == 1:
            return None, f"constant (every value is {counts.index[0]!r})"
        if len(counts) > self.one_hot_max:
            kept = sorted(counts.index[counts.to_numpy() >= 2])
            if len(kept) + 2 > MAX_CODES:
                raise ValueError(f"Column {name!r} has {len(kept):,} categories; at most {MAX_CODES - 2:,} can be coded.")
            return {"name": name, "kind": "coded", "categories": kept, "rare": int(len(counts) - len(kept)),
                    "width": embedding_width(len(kept) + 2)}, None
        # The most frequent fills gaps; ties go to the first in text order, whatever the row order.
        fill = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
        return {"name": name, "kind": "categorical", "fill": fill, "categories": sorted(counts.index)}, None

    def _require_fitted(self):
        if not self.fitted:
            raise ValueError("The preprocessor is not fitted yet; call fit(frame) first.")

    @property
    def feature_columns(self):
        """The input columns that the transform reads, in order."""
        self._require_fitted()
        return [spec["name"] for spec in self.columns]

    @property
    def embeddings(self):
        """(output position, number of codes, embedding width) of each coded column, in order."""
        names = self.output_names
        return [(names.index(spec["name"]), len(spec["categories"]) + 2, spec["width"])
                for spec in self.columns if spec["kind"] == "coded"]

    @property
    def output_names(self):
        """One name per output column: the numeric, date or coded column, or ``column=category``."""
        self._require_fitted()
        names = []
        for spec in self.columns:
            if spec["kind"] == "categorical":
                names.extend(f"{spec['name']}={category}" for category in spec["categories"])
                if spec.get("missing"):
                    names.append(f"{spec['name']}={MISSING_NAME}")
            else:
                names.append(spec["name"])
                if spec.get("missing"):
                    names.append(f"{spec['name']} {MISSING_NAME}")
        return names

    def missing_counts(self, frame):
        """{column: empty cells} over the columns the transform reads (only those with any)."""
        self._require_fitted()
        counts = {name: int(frame[name].isna().sum()) for name in self.feature_columns if name in frame}
        return {name: count for name, count in counts.items() if count}

    def check_columns(self, frame):
        """ValueError naming each feature column that ``frame`` lacks."""
        absent = [name for name in self.feature_columns if name not in frame.columns]
        if absent:
            word = "column" if len(absent) == 1 else "columns"
            raise ValueError(
                f"Missing feature {word} {_shown(absent, 10)}; the model was trained on "
                f"{', '.join(map(repr, self.feature_columns))}."
            )

    def transform(self, frame, warn_truncated=True, new_rows=None):
        """``frame`` as a float32 array (rows, len(output_names)).

        Warns about categories unseen in training (``warn_truncated=False`` leaves out those a
        coded column saw only once, and those cut by an older file's limit: the training rows;
        ``new_rows`` names the rows that can hold them, such as "validation") and
        about cells of a number or date column that are not one (read as missing, as in ``fit``);
        when they are more than half of the column's filled cells (the column does not hold
        numbers), or a value is too large for float32, it is a ValueError naming the first."""
        self._require_fitted()
        self.check_columns(frame)
        unseen = ("row(s) hold categories not seen in training" if new_rows is None else
                  f"{new_rows} row(s) hold categories not seen in the training rows")
        out = numpy.empty((len(frame), len(self.output_names)), dtype=numpy.float32)
        at = 0  # the next output column; each block is written in place, float64 rounded once
        for spec in self.columns:
            series = frame[spec["name"]]
            if spec["kind"] == "categorical":
                block = self._one_hot(spec, series, warn_truncated, unseen)
                out[:, at:at + block.shape[1]] = block
                at += block.shape[1]
                continue
            if spec["kind"] == "coded":
                out[:, at] = self._codes(spec, series, warn_truncated, unseen)
                at += 1
                continue
            if spec["kind"] == "numeric":
                values, bad = _parse_numbers(series)
                fill = f"{spec['fill']:.4g}"
            else:
                values, bad = _parse_dates(series)
                fill = f"day {spec['fill']:.0f} after 1970-01-01"
            _stray_cells(series, spec["name"], bad, _KIND_WORDS[spec["kind"]],
                         filled=f"the training median, {fill}", limit=TRANSFORM_STRAY_FRACTION)
            _check_range(series, spec["name"], values)
            gaps = numpy.isnan(values)
            values = numpy.where(gaps, spec["fill"], values)
            out[:, at] = _standardised(values, spec, series)
            at += 1
            if spec.get("missing"):
                out[:, at] = gaps
                at += 1
        return out

    def _codes(self, spec, series, warn_truncated, unseen):
        """MISSING_CODE for gaps, UNKNOWN_CODE for categories not kept in training, 2 + i for ``categories[i]``."""
        import pandas

        text = _category_keys(series)
        missing = text.isna().to_numpy()
        codes = pandas.Index(spec["categories"]).get_indexer(text) + 2
        unknown = (codes < 2) & ~missing
        name = spec["name"]
        if unknown.any() and (warn_truncated or not spec["rare"]):
            values = sorted(set(text[unknown]))
            seen = " (or seen only once)" if spec["rare"] else ""
            _warn(f"Column {name!r}: {int(unknown.sum())} {unseen}{seen} "
                  f"({_shown(values)}); they get the unknown category's code.", name)
        codes[missing] = MISSING_CODE
        codes[unknown] = UNKNOWN_CODE
        return codes.astype(numpy.float64)

    def _one_hot(self, spec, series, warn_truncated, unseen):
        import pandas

        keys = _category_keys(series)
        gaps = keys.isna().to_numpy()
        text = keys.fillna(spec["fill"])
        codes = pandas.Index(spec["categories"]).get_indexer(text)
        if spec.get("missing"):  # a gap is its own category, the last column
            codes[gaps] = len(spec["categories"])
        missed = codes < 0
        name = spec["name"]
        if missed.any() and (warn_truncated or name not in self.truncated):
            values = sorted(set(text[missed]))
            if name in self.truncated:
                what = (f"row(s) hold categories outside the {len(spec['categories'])} most frequent kept in "
                        f"training (rare or new: {_shown(values)})")
            else:
                what = f"{unseen} ({_shown(values)})"
            _warn(f"Column {name!r}: {int(missed.sum())} {what}; they are encoded as all zeros.", name)
        encoded = numpy.zeros((len(codes), len(spec["categories"]) + bool(spec.get("missing"))), dtype=numpy.float64)
        rows = numpy.flatnonzero(~missed)
        encoded[rows, codes[rows]] = 1.0
        return encoded

    def fit_transform(self, frame, columns=None, **options):
        return self.fit(frame, columns, **options).transform(frame, warn_truncated=False)

    def to_config(self):
        """A plain JSON-ready dict holding everything ``transform`` needs (and the fit report);
        version 1 when an older xpann can read it, 2 with dates, 3 with coded columns."""
        self._require_fitted()
        kinds = {spec["kind"] for spec in self.columns}
        version = 5 if any(spec.get("clip") for spec in self.columns) else \
            4 if any(spec.get("missing") for spec in self.columns) else \
            3 if "coded" in kinds else 2 if "date" in kinds else 1
        return {"version": version, "one_hot_max": self.one_hot_max, "missing_rule": self.missing_rule,
                "scaling": self.scaling,
                "rows": self.rows,
                "columns": self.columns, "dropped": self.dropped, "missing": self.missing,
                "truncated": self.truncated}

    @classmethod
    def from_config(cls, config):
        _check_version(config, "feature preprocessing")
        try:
            preprocessor = cls(one_hot_max=config.get("one_hot_max", ONE_HOT_MAX),
                               missing=config.get("missing_rule", "fill"),
                               scaling=config.get("scaling", "standard"))
            columns = [dict(spec) for spec in config["columns"]]
            for spec in columns:
                if not isinstance(spec.get("missing", False), bool):
                    raise ValueError(f"'missing' of column {spec.get('name')!r} must be true or false")
                if not isinstance(spec["name"], (str, int, float)) or isinstance(spec["name"], bool):
                    raise ValueError(f"a column name must be text or a number, got {spec['name']!r}")
                if spec["kind"] in ("numeric", "date"):
                    spec.update(fill=float(spec["fill"]), mean=float(spec["mean"]), scale=float(spec["scale"]))
                    if "clip" in spec:
                        spec["clip"] = float(spec["clip"])
                        if not (math.isfinite(spec["clip"]) and spec["clip"] > 0):
                            raise ValueError(f"the clip of column {spec['name']!r} must be a number > 0")
                elif spec["kind"] == "categorical":
                    spec.update(fill=str(spec["fill"]), categories=[str(c) for c in spec["categories"]])
                elif spec["kind"] == "coded":
                    spec.update(categories=[str(c) for c in spec["categories"]], rare=int(spec["rare"]),
                                width=int(spec["width"]))
                    if not (0 < spec["width"] <= MAX_STORED_WIDTH and len(spec["categories"]) + 2 <= MAX_CODES):
                        raise ValueError(f"coded column {spec['name']!r} has an impossible width or size")
                else:
                    raise ValueError(f"unknown column kind {spec['kind']!r}")
            preprocessor.columns = columns
            preprocessor.dropped = dict(config.get("dropped", {}))
            preprocessor.missing = dict(config.get("missing", {}))
            preprocessor.truncated = dict(config.get("truncated", {}))
            preprocessor.rows = int(config.get("rows", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"The stored feature preprocessing is damaged ({type(error).__name__}: {error}).") from None
        return preprocessor
