"""``TabularModel``: a table in, a trained network and its preprocessing out, predictions in the
user's terms (labels as written, values in the target's units)."""

import contextlib
import math
import os
import time
import types
import warnings

import numpy

from .. import callbacks, distributed, losses, optimizers, preprocessing, schedules
from ..backend import resolve_backend
from ..errors import TrainingDivergedError, TrainingHealthWarning
from ..model import load_model
from ..preprocessing._cells import _label_key
from . import _evaluation, _options
from ._network import build_network, describe_network
from ._csv import read_table, require_column
from ._sources import read_source

METADATA_VERSION = 1
FOLDS = 5  # epochs="cv": folds of the rows that choose the number of epochs
FOLDS_BELOW_ROWS = 1000  # epochs="auto" chooses by folds below this many rows: measured better on all 8 such
# tables of benchmarks/tabular_quality.py, worse on the 5 larger ones (tabular_defaults_2026-12-07_folds.md)


class TabularModel:
    """The pipeline ``xpann train`` runs, as an object: ``fit`` learns the preprocessing (numbers
    and dates (as days) robustly scaled and smoothly clipped, text one-hot or coded for an embedding, gaps filled, ID and
    constant columns dropped), chooses the task, splits off validation rows (stratified), trains
    and keeps the epoch with the lowest validation loss. The options are ``xpann train``'s, by the
    same names and defaults (``--val-split`` is ``val_split``, ``--hidden 64,32`` is
    ``hidden=(64, 32)``). After ``fit`` or ``load``: ``task``, ``classes_`` (None for regression),
    ``feature_names_in_``, ``model`` (the Sequential), ``history`` ({metric: per-epoch values}),
    ``preprocessor``, ``target_encoder`` and ``scores_`` (final train/validation metrics)."""

    def __init__(self, target, task="auto", drop=(), keep=(), hidden=(64, 32), activation="relu",
                 init="he_normal", optimizer="adam", lr=1e-3, epochs="auto", batch_size=32, val_split=0.2,
                 patience=None, class_weight=None, seed=0, backend=None, verbose=1, weight_decay=1e-4, dropout=0.1,
                 lr_schedule="constant", label_smoothing=0.0, scaling="robust", categorical=()):
        if target is None or (isinstance(target, str) and not target.strip()):
            raise ValueError("target must name the column to predict.")
        self.target = target
        self.options = _options.checked({
            "task": task, "drop": drop, "keep": keep, "categorical": categorical, "hidden": hidden, "activation": activation, "init": init,
            "optimizer": optimizer, "lr": lr, "lr_schedule": lr_schedule, "weight_decay": weight_decay,
            "dropout": dropout, "label_smoothing": label_smoothing, "scaling": scaling, "epochs": epochs,
            "batch_size": batch_size, "val_split": val_split,
            "patience": patience, "class_weight": class_weight, "seed": seed, "backend": backend,
            "verbose": verbose})
        self.model = self.preprocessor = self.target_encoder = None
        self.history = None
        self.feature_names_in_ = None
        self.scores_ = None
        self.trained_on = {}

    # ----- what the user reads ------------------------------------------------------------

    @property
    def task(self):
        return None if self.target_encoder is None else self.target_encoder.task

    @property
    def classes_(self):
        if self.target_encoder is None or self.task != "classification":
            return None
        return list(self.target_encoder.classes)

    def __repr__(self):
        state = f"{self.task} of {self.target!r}" if self.model is not None else f"target={self.target!r}, not fitted"
        return f"TabularModel({state})"

    def _say(self, text):
        """A line of the account of fit, printed at verbose >= 1."""
        if self.options["verbose"]:
            print(text, flush=True)

    def _option(self, name, value=None):
        """How messages name an option (the CLI says ``--keep id`` where Python says ``keep=['id']``)."""
        if value is None:
            return name
        return f"{name}={[value] if name in ('drop', 'keep', 'categorical') else value!r}"

    # ----- fit ----------------------------------------------------------------------------

    def fit(self, data, sample_weight=None):
        """Learn from ``data`` (a DataFrame, or the path of a CSV or Parquet file). ``sample_weight``:
        one weight per row, or the name of a column of ``data`` holding them. Rows without a target
        value are skipped. Returns self."""
        o = self.options
        backend = resolve_backend(o["backend"])  # fails now, not after reading the data
        p = self._prepare(data, sample_weight, split=None)
        by_folds = p.by_folds
        preprocessor, encoder, task, source = p.preprocessor, p.target_encoder, p.task, p.source
        training, x_train, y_train, held_out, train_weights = p.training, p.x_train, p.y_train, p.held_out, p.weights
        validation_rows = 0 if held_out is None else len(held_out[1])
        note = ""
        if by_folds:
            epochs, chosen = self._epochs_by_folds(p, backend)
            note = f" ({chosen}; then on every row)"
        elif o["epochs"] == "auto":
            epochs = _options.default_epochs(len(training), o["batch_size"])
            if epochs != _options.DEFAULT_EPOCHS:
                note = (f" (more than {_options.DEFAULT_EPOCHS} for a small data set; "
                        f"{self._option('epochs')} sets it)")
        else:
            epochs = o["epochs"]
        if o["lr_schedule"] == "cosine":
            note += ", the learning rate decaying to 0 along a cosine"
        model = self._compiled(preprocessor, encoder, backend, epochs, len(training))
        guard = callbacks.TerminateOnNaN()
        stopper = None if held_out is None else callbacks.EarlyStopping(
            monitor="val_loss", patience=epochs if o["patience"] is None else o["patience"],
            restore_best_weights=True)
        network = describe_network(model, preprocessor, encoder, o["hidden"], o["activation"], o["init"], o["dropout"])
        self._say(f"Network: {network}.")
        if by_folds:
            keeping = "; no rows held out, the model keeps the last epoch's weights"
        elif stopper is None:
            keeping = "; no validation rows, so the model keeps the last epoch's weights"
        elif o["patience"] is None:
            keeping = "; the model keeps the weights of the epoch with the lowest val_loss"
        else:
            keeping = (f"; stop after {o['patience']} epochs without a better val_loss and keep the best "
                       "epoch's weights")
        weighting = "" if train_weights is None else ", weighted rows"
        decay = f" weight decay {o['weight_decay']:g}," if o["weight_decay"] else ""
        self._say(f"Training: {o['optimizer']} lr {o['lr']:g},{decay} batch {o['batch_size']}, "
                  f"{_count(epochs, 'epoch')}{note}{weighting}{keeping}.")
        self._say(f"Backend: {model.backend.describe()}.")
        if task == "regression":
            self._say(f"(The per-epoch loss, mae and rmse are on the standardised target; the scores at the end "
                      f"are in the units of {self.target!r}.)")

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            history = model.fit(x_train, y_train, epochs=epochs, batch_size=o["batch_size"], validation_data=held_out,
                                callbacks=[guard] + ([stopper] if stopper else []), verbose=o["verbose"],
                                shuffle=True, sample_weight=train_weights)
            seconds = time.perf_counter() - start
            scores = {"train": _evaluation.in_target_units(model.evaluate(x_train, y_train), encoder)}
            if held_out is not None:
                scores["validation"] = _evaluation.in_target_units(model.evaluate(*held_out), encoder)
        if guard.stopped_epoch is not None:
            self._diverged(guard.stopped_epoch, history.history, caught)
        if not all(math.isfinite(v) for results in scores.values() for v in results.values()):
            self._diverged(len(history.epoch) - 1, {f"{part} {name}": [v] for part, results in scores.items()
                                                     for name, v in results.items()}, caught)
        for text, category in dict.fromkeys((str(w.message), w.category) for w in caught):
            if issubclass(category, RuntimeWarning):  # NumPy's floating-point notices, in words
                text = f"numerical trouble in training: {text}"
            warnings.warn(text, TrainingHealthWarning if issubclass(category, TrainingHealthWarning) else UserWarning,
                          stacklevel=2)

        epochs_run = len(history.epoch)
        best_epoch = None
        if stopper is not None and stopper.best_epoch is not None:
            best_epoch = stopper.best_epoch + 1
            if stopper.stopped_epoch is not None:
                self._say(f"Stopped early after epoch {epochs_run} ({stopper.patience} epochs without a better "
                          f"val_loss); kept the weights of epoch {best_epoch} (val_loss {stopper.best:.4f}).")
            else:
                self._say(f"Kept the weights of epoch {best_epoch} of {epochs_run}, the one with the lowest "
                          f"val_loss ({stopper.best:.4f}).")
                if best_epoch == epochs_run:
                    self._say(f"The last epoch was the best: more epochs may do better "
                              f"({self._option('epochs', 2 * epochs_run)}, say).")
        self.model, self.preprocessor, self.target_encoder = model, preprocessor, encoder
        self.history = {name: list(values) for name, values in history.history.items()}
        self.feature_names_in_ = list(p.features)
        self.scores_ = scores
        samples = len(training) * epochs_run
        self._say(f"Time: {seconds:.2f} s for {_count(epochs_run, 'epoch')}, {samples / max(seconds, 1e-9):,.0f} "
                  f"samples/s on {model.backend.describe(model.blas_threads)}.")
        self.trained_on = {
            "data": None if source.path is None else os.path.basename(str(source.path)), "sha256": source.digest,
            "training_rows": len(training), "validation_rows": validation_rows, "epochs": epochs_run,
            "best_epoch": best_epoch, "seed": o["seed"]}
        if by_folds:
            self.trained_on["fold_val_loss"] = self._fold_losses  # mean over the folds, per epoch
        return self

    def _compiled(self, preprocessor, encoder, backend, epochs, rows):
        """The network, seeded and compiled with the optimizer (and schedule) for ``epochs`` over ``rows``."""
        o = self.options
        model = build_network(preprocessor, encoder, o["hidden"], o["activation"], o["init"], o["seed"], backend,
                              dropout=o["dropout"])
        rate = o["lr"]
        if o["lr_schedule"] == "cosine":
            rate = schedules.CosineDecay(o["lr"], decay_steps=epochs * math.ceil(rows / o["batch_size"]))
        optimizer = type(optimizers.get(o["optimizer"]))(learning_rate=rate, weight_decay=o["weight_decay"])
        loss = encoder.loss
        if encoder.task == "classification" and o["label_smoothing"]:
            loss = type(losses.get(loss))(label_smoothing=o["label_smoothing"])
        model.compile(optimizer=optimizer, loss=loss,
                      metrics=["accuracy"] if encoder.task == "classification" else ["mae", "rmse", "r2"])
        return model

    def _epochs_by_folds(self, p, backend):
        """(epochs, how they were chosen): the epoch with the lowest validation loss averaged over
        FOLDS folds of the rows (stratified by class), each trained for the epochs "auto" gives."""
        o = self.options
        rows = len(p.y_train)
        if rows < 2 * FOLDS:
            raise ValueError(f"epochs='cv' needs at least {2 * FOLDS} rows with a target, got {rows}.")
        fold = numpy.empty(rows, dtype=numpy.int64)
        rng = numpy.random.default_rng(o["seed"])
        groups = [numpy.arange(rows)] if p.task != "classification" else \
            [numpy.flatnonzero(p.y_train == code) for code in range(len(p.target_encoder.classes))]
        start = 0
        for group in groups:  # each class dealt round the folds in turn
            fold[rng.permutation(group)] = (start + numpy.arange(len(group))) % FOLDS
            start += len(group)
        most = _options.default_epochs(rows - rows // FOLDS, o["batch_size"])
        curves = []
        for k in range(FOLDS):
            inside, outside = fold != k, fold == k
            model = self._compiled(p.preprocessor, p.target_encoder, backend, most, int(inside.sum()))
            weights = None if p.weights is None else p.weights[inside]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                history = model.fit(p.x_train[inside], p.y_train[inside], epochs=most, batch_size=o["batch_size"],
                                    validation_data=(p.x_train[outside], p.y_train[outside]), verbose=0,
                                    sample_weight=weights)
            losses = history.history["val_loss"]
            curves.append(losses + [losses[-1]] * (most - len(losses)))  # a NaN stop ends a curve early
        mean = numpy.mean(curves, axis=0)
        best = int(numpy.nanargmin(mean)) + 1 if numpy.isfinite(mean).any() else most
        self._fold_losses = [float(v) for v in mean]
        return best, (f"the lowest mean val_loss ({mean[best - 1]:.4f}) of {FOLDS}-fold cross-validation over "
                      f"{most} epochs")

    def prepare(self, data, sample_weight=None):
        """Learn the preprocessing and the target's encoding from every row of ``data`` (no split,
        no training) and return (x, y): the arrays ``fit`` would train on, rows in their order."""
        p = self._prepare(data, sample_weight, split=False)
        self.preprocessor, self.target_encoder, self.feature_names_in_ = p.preprocessor, p.target_encoder, p.features
        return p.x_train, p.y_train

    def _by_folds(self, rows):
        """True when the epochs are chosen by folds: asked for (epochs="cv"), or epochs="auto" on
        fewer than FOLDS_BELOW_ROWS rows with validation asked for and no patience, where a
        validation split would leave too few rows to choose by."""
        o = self.options
        return o["epochs"] == "cv" or (o["epochs"] == "auto" and o["val_split"] > 0 and o["patience"] is None
                                       and 2 * FOLDS <= rows < FOLDS_BELOW_ROWS)

    def _prepare(self, data, sample_weight, split):
        """Read, choose the task, split (``split`` None: unless the epochs are chosen by folds),
        learn the preprocessing: the arrays to train on."""
        o = self.options
        source = read_source(data, text=[self.target])
        frame = source.frame
        with _about(source):
            self._require_column(frame, self.target, "Target column")
            weight_column = sample_weight if isinstance(sample_weight, str) else None
            features = self._features(frame, weight_column)
            weights = self._row_weights(frame, sample_weight, weight_column)
            present = frame[self.target].notna().to_numpy()
            if not present.any():
                raise ValueError(f"The target column {self.target!r} is empty in every row.")
            skipped = int((~present).sum())
            frame = frame[present]
            weights = None if weights is None else weights[present]
        by_folds = split is None and self._by_folds(len(frame))
        split = not by_folds if split is None else split
        notes = f" ({'; '.join(source.notes)})" if source.notes else ""
        self._say(f"Data: {source.shown or 'a data frame'}: {len(frame) + skipped:,} rows, "
                  f"{len(source.frame.columns):,} columns{notes}.")
        if skipped:
            self._say(f"Skipped {skipped:,} row(s) with no value in the target column {self.target!r}.")

        with _about(source):
            task, reason = self._task(frame[self.target])
            if task == "classification":
                preprocessing.check_classification_target(frame[self.target])
        self._say(f"Task: {task} ({reason}).")
        with _about(source):
            ids = preprocessing.id_columns(frame, [c for c in features if c not in o["drop"]], o["keep"])
            if split:
                labels = frame[self.target] if task == "classification" else None
                train_rows, validation_rows = preprocessing.split_rows(len(frame), o["val_split"], o["seed"], labels)
            else:
                train_rows, validation_rows = numpy.arange(len(frame)), numpy.empty(0, dtype=numpy.int64)
        training, validation = frame.iloc[train_rows], frame.iloc[validation_rows]
        with _about(source):
            with warnings.catch_warnings():  # the pass over all rows below reports each column's odd cells once
                warnings.simplefilter("ignore", preprocessing.PreprocessingWarning)
                preprocessor = preprocessing.TabularPreprocessor(scaling=o["scaling"]).fit(
                    training, features, drop=o["drop"], keep=o["keep"], ids=ids, categorical=o["categorical"])
            # one pass over every row, so each column's odd cells are reported once; a category
            # unseen in training can only be in the validation rows
            x_all = preprocessor.transform(frame, warn_truncated=False, new_rows="validation")
            encoder = preprocessing.TargetEncoder(task, name=self.target).fit(training[self.target])
            y_train = encoder.transform(training[self.target])
            x_train = x_all[train_rows]
            held_out = (x_all[validation_rows], encoder.transform(validation[self.target])) if len(validation) else None
            train_weights = self._training_weights(weights, train_rows, y_train, encoder)
        distributed.check_same("preprocessing", {"features": preprocessor.to_config(), "target": encoder.to_config()})
        self._describe_preprocessing(preprocessor, encoder, x_train.shape[1])
        if split:
            stratified = "stratified by class, " if task == "classification" else ""
            self._say(f"Split: {len(training):,} training rows, {len(validation):,} validation rows "
                      f"({stratified}seed {o['seed']}).")
        return types.SimpleNamespace(source=source, features=features, task=task, preprocessor=preprocessor,
                                     by_folds=by_folds, target_encoder=encoder, training=training, x_train=x_train,
                                     y_train=y_train, held_out=held_out, weights=train_weights)

    @staticmethod
    def _require_column(frame, column, what):
        require_column(frame, column, None, what)

    def _features(self, frame, weight_column):
        """All columns but the target (and the weight column); drop and keep must name them."""
        o = self.options
        if weight_column is not None:
            self._require_column(frame, weight_column, "Sample-weight column")
            if weight_column == self.target:
                raise ValueError(f"The sample-weight column {weight_column!r} is the target column.")
        for option in ("drop", "keep", "categorical"):
            for name in o[option]:
                if name == self.target:
                    raise ValueError(f"{self._option(option)}: {name!r} is the target column.")
                try:
                    self._require_column(frame, name, "Column")
                except ValueError as error:
                    raise ValueError(f"{self._option(option)}: {error}") from None
        return [c for c in frame.columns if c != self.target and c != weight_column]

    def _row_weights(self, frame, sample_weight, weight_column):
        """float64 weights per row of ``frame``, or None."""
        if sample_weight is None:
            return None
        if weight_column is not None:
            values, bad = preprocessing._cells._parse_numbers(frame[weight_column])
            if bad.any() or numpy.isnan(values).any():
                position = int(numpy.argmax(bad | numpy.isnan(values)))
                raise ValueError(f"The sample-weight column {weight_column!r} must hold a number in every row; "
                                 f"row {frame.index[position]} holds {frame[weight_column].iloc[position]!r}.")
        else:
            values = numpy.asarray(sample_weight, dtype=numpy.float64)
            if values.shape != (len(frame),):
                raise ValueError(f"sample_weight must hold one weight per row of the data ({len(frame):,}), "
                                 f"got shape {values.shape}.")
        if not numpy.isfinite(values).all() or (values < 0).any():
            raise ValueError("sample weights must be finite and >= 0.")
        return values

    def _training_weights(self, weights, train_rows, y_train, encoder):
        """The training rows' sample weights times their class weights, or None."""
        class_weight = self.options["class_weight"]
        if class_weight is not None and encoder.task != "classification":
            raise ValueError("class_weight applies to classification; this is a regression.")
        out = None if weights is None else weights[train_rows]
        if class_weight is None:
            return out
        counts = numpy.bincount(y_train, minlength=len(encoder.classes))
        if class_weight == "balanced":
            per_class = len(y_train) / (len(encoder.classes) * numpy.maximum(counts, 1))
        else:
            index = {_label_key(label): code for code, label in enumerate(encoder.classes)}
            per_class = numpy.ones(len(encoder.classes))
            for label, weight in class_weight.items():
                code = index.get(_label_key(label))
                if code is None:
                    raise ValueError(f"class_weight names the class {label!r}, which is not among the training "
                                     f"labels {', '.join(map(repr, encoder.classes))}.")
                if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                    raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, got {weight!r}.")
                per_class[code] = weight
        factor = per_class[y_train]
        return factor if out is None else out * factor

    def _task(self, series):
        requested = self.options["task"]
        if requested != "auto":
            if requested == "classification":
                _warn_if_continuous(series, self._option("task", "regression"))
            return requested, f"as asked with {self._option('task', requested)}"
        task, reason = preprocessing.infer_task(series)
        if task == "classification" and "whole numbers" in reason:
            reason += f"; {self._option('task', 'regression')} predicts them as numbers"
        return task, reason

    def _describe_preprocessing(self, preprocessor, encoder, width):
        kinds = [spec["kind"] for spec in preprocessor.columns]
        scaled = "robustly scaled, clipped smoothly to +-3" if preprocessor.scaling == "robust" else "standardised"
        count = kinds.count("date")
        dates = f", {count} date{'s' if count > 1 else ''} (days since 1970-01-01, {scaled})" if count else ""
        coded = f", {kinds.count('coded')} text (coded for an embedding)" if "coded" in kinds else ""
        self._say(f"Features: {kinds.count('numeric')} numeric ({scaled}){dates}, {kinds.count('categorical')} "
                  f"text (one-hot){coded} -> {width:,} network inputs.")
        for spec in preprocessor.columns:
            if spec["kind"] == "date":
                self._say(f"Column {spec['name']!r} holds dates: read as days since 1970-01-01, then "
                          f"{'scaled as numbers' if preprocessor.scaling == 'robust' else 'standardised'}.")
            elif spec["kind"] == "coded":
                rare = f"; {spec['rare']:,} seen once share the unknown code" if spec["rare"] else ""
                self._say(f"Column {spec['name']!r} has more than {preprocessor.one_hot_max} categories: an "
                          f"embedding of width {spec['width']} for {len(spec['categories']):,} of them{rare}.")
        if encoder.task == "classification":
            self._say(f"Classes: {', '.join(map(str, encoder.classes))}.")
        else:
            self._say(f"Target: mean {encoder.mean:.4g}, standard deviation {encoder.scale:.4g} "
                      "(standardised for training; predictions come back in its units).")
        used = [spec for spec in preprocessor.columns if spec["name"] in preprocessor.missing]
        if used:
            fills = ", ".join(f"{spec['name']} {preprocessor.missing[spec['name']]:,} ({_fill(spec)})" for spec in used)
            total = sum(preprocessor.missing[spec["name"]] for spec in used)
            self._say(f"Missing values in the training rows: {total:,} filled: {fills}.")
        else:
            elsewhere = " (in the columns used)" if preprocessor.missing else ""
            self._say(f"Missing values in the training rows: none{elsewhere}.")
        for name, reason in preprocessor.dropped.items():
            hint = f"; {self._option('keep', name)} uses it" if "ID" in reason else ""
            self._say(f"Dropped column {name!r}: {reason}{hint}.")

    def _diverged(self, epoch, logs, caught):
        """Training produced a NaN or infinite loss: warn what the health checks found, then fail."""
        for text in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, TrainingHealthWarning)
                                  and "training stopped" not in str(w.message)):
            warnings.warn(text, TrainingHealthWarning, stacklevel=3)
        values = ", ".join(f"{name} {values[-1]}" for name, values in logs.items()
                           if values and not math.isfinite(values[-1]))
        o = self.options
        raise TrainingDivergedError(
            f"Training failed in epoch {epoch + 1} ({values or 'a weight became infinite or NaN'}): the weights blew up. Try a "
            f"smaller {self._option('lr')} (now {o['lr']:g}), another {self._option('optimizer')} or "
            f"{self._option('init')}. Nothing was kept.")

    # ----- use ----------------------------------------------------------------------------

    def _require_fitted(self, what):
        if self.model is None:
            raise ValueError(f"This TabularModel is not fitted yet; call fit(data) before {what}.")

    def _inputs(self, source):
        """The network inputs for the rows of ``source``; unseen categories are warned about."""
        with _about(source):
            return self.preprocessor.transform(source.frame)

    def _read(self, data):
        """``data`` as a Source; a file's text, category and date columns (and the target) stay text."""
        return read_source(data, text=self._text_columns())

    def _text_columns(self):
        return [self.target] + [spec["name"] for spec in self.preprocessor.columns if spec["kind"] != "numeric"]

    def read(self, path, text=()):
        """The CSV at ``path`` as this model reads it: a CsvFile with ``frame`` (its number columns
        typed, but the model's text columns and those named in ``text``), ``raw`` (the cells as
        written), ``path`` and ``digest``."""
        self._require_fitted("read")
        return read_table(path, numbers=True, text=self._text_columns() + list(text))

    def transform(self, data):
        """The network inputs (float32, one row per row of ``data``) as ``predict`` computes them."""
        self._require_fitted("transform")
        return self._inputs(self._read(data))

    def _index(self, source):
        import pandas

        return source.frame.index if source.path is None else pandas.RangeIndex(len(source.frame))

    def _outputs(self, data, what):
        """(the Source of ``data``, the network's host outputs for its rows)."""
        self._require_fitted(what)
        source = self._read(data)
        return source, numpy.asarray(self.model.predict(self._inputs(source)))

    def predict(self, data):
        """A pandas Series named after the target, one value per row of ``data`` (its index; a file's
        rows numbered from 0): class labels as written in the training data, or values in the
        target's units."""
        import pandas

        source, outputs = self._outputs(data, "predict")
        return pandas.Series(self.target_encoder.decode(outputs), index=self._index(source), name=self.target)

    def predict_proba(self, data):
        """A DataFrame of class probabilities, one column per class label (classification only)."""
        import pandas

        if self.task == "regression":
            raise ValueError("predict_proba is for classification; this model is a regression (use predict).")
        source, outputs = self._outputs(data, "predict_proba")
        return pandas.DataFrame(outputs, index=self._index(source), columns=list(self.target_encoder.classes))

    def predict_table(self, data):
        """What ``xpann predict`` adds to the rows: a ``prediction`` column and, for a classifier,
        one ``probability_<label>`` column per class."""
        import pandas

        source, outputs = self._outputs(data, "predict")
        added = {"prediction": self.target_encoder.decode(outputs)}
        if self.task == "classification":
            for index, label in enumerate(self.target_encoder.classes):
                added[f"probability_{label}"] = outputs[:, index]
        return pandas.DataFrame(added, index=self._index(source))

    def evaluate(self, data):
        """The metrics ``xpann evaluate --json`` prints, in the target's units: loss and accuracy for
        a classifier, loss, mae, rmse and r2 for a regression."""
        return self.evaluation(data)["metrics"]

    def evaluation(self, data, target=None):
        """``evaluate`` in full: {"rows", "skipped_rows", "task", "target", "metrics"} and, for a
        classifier, "per_class" (precision, recall, support) and "confusion_matrix". ``target``
        scores the predictions against another column (default: the one trained on)."""
        import copy

        self._require_fitted("evaluate")
        source = read_source(data, text=self._text_columns() + ([] if target is None else [target]))
        target = self.target if target is None else target
        encoder = copy.copy(self.target_encoder)
        encoder.name = target  # messages name the column scored against
        with _about(source):
            self._require_column(source.frame, target, "Target column")
            present = source.frame[target].notna().to_numpy()
            if not present.any():
                raise ValueError(f"The target column {target!r} is empty in every row.")
            frame = source.frame[present]
            y = encoder.transform(frame[target])
            x = self.preprocessor.transform(frame)
        results = _evaluation.in_target_units(self.model.evaluate(x, y), encoder)
        summary = {"rows": len(frame), "skipped_rows": int((~present).sum()), "task": encoder.task,
                   "target": target, "metrics": results}
        if encoder.task == "classification":
            details = _evaluation.classification_details(y, self.model.predict(x), encoder.classes)
            results["accuracy"] = details["accuracy"]
            summary.update(correct=details["correct"], per_class=details["per_class"],
                           confusion_matrix=details["confusion_matrix"])
        summary["digest"] = source.digest
        return summary

    # ----- files --------------------------------------------------------------------------

    def save(self, path):
        """Write the network and its preprocessing to ``path`` (the file ``xpann train`` writes)."""
        self._require_fitted("save")
        options = {name: list(value) if isinstance(value, tuple) else value
                   for name, value in self.options.items() if name not in ("backend", "verbose", "class_weight")}
        preprocessing.attach(self.model, self.preprocessor, self.target_encoder, trained_on=self.trained_on,
                             tabular_model={"version": METADATA_VERSION, "options": options,
                                            "feature_names_in": [str(c) for c in self.feature_names_in_],
                                            "history": self.history, "scores": self.scores_})
        self.model.save(path)


def load(path, backend=None):
    """The TabularModel saved at ``path`` by ``TabularModel.save`` or ``xpann train``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a model file.")
    if not os.path.exists(path):
        raise ValueError(f"No model file at {path}.")
    model = load_model(path, backend=backend)
    try:
        features, encoder, stored = preprocessing.from_model(model)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if model.input_dim != len(features.output_names):
        raise ValueError(f"{path} is damaged: the network takes {model.input_dim} inputs but the stored "
                         f"preprocessing makes {len(features.output_names)}.")
    if model.output_dim != encoder.n_outputs:
        raise ValueError(f"{path} is damaged: the network has {model.output_dim} outputs but the stored target "
                         f"encoding needs {encoder.n_outputs}.")
    extra = stored.get("tabular_model") if isinstance(stored.get("tabular_model"), dict) else {}
    known = {k: v for k, v in (extra.get("options") or {}).items() if k in _options.DEFAULTS}
    try:
        loaded = TabularModel(target=encoder.name, **{**known, "backend": backend})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the stored options are damaged ({error}).") from None
    loaded.model, loaded.preprocessor, loaded.target_encoder = model, features, encoder
    loaded.feature_names_in_ = list(extra.get("feature_names_in") or features.feature_columns)
    loaded.history = extra.get("history")
    loaded.scores_ = extra.get("scores")
    loaded.trained_on = dict(stored.get("trained_on") or {})
    return loaded


def _warn_if_continuous(series, instead):
    """A warning when a target forced to classification looks like a measurement: numbers, not all
    whole, or more than 20 distinct values, so that most classes hold a few rows."""
    values, bad = preprocessing._cells._parse_numbers(series.dropna())
    if bad.any() or values.size == 0:
        return
    distinct = numpy.unique(values).size
    if distinct > preprocessing._target.MAX_INTEGER_CLASSES or not numpy.all(values == numpy.round(values)):
        warnings.warn(f"Target {series.name!r} holds numbers with {distinct:,} distinct values, {values.size / distinct:.1f} "
                      f"rows per class on average: as classes they say little; {instead} predicts them as numbers.",
                      UserWarning, stacklevel=4)


@contextlib.contextmanager
def _about(source):
    """ValueErrors raised inside name the file ``source`` was read from."""
    try:
        yield
    except ValueError as error:
        if source.path is None or str(error).startswith(source.shown):
            raise
        raise ValueError(source.about(str(error))) from None


def _count(number, noun):
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _fill(spec):
    """How a column's gaps are handled, in words: "median 3.5 and a missing indicator"."""
    flagged = " and a missing indicator" if spec.get("missing") else ""
    if spec["kind"] == "numeric":
        return f"median {spec['fill']:.4g}{flagged}"
    if spec["kind"] == "date":
        import pandas

        day = (pandas.Timestamp("1970-01-01") + pandas.Timedelta(days=spec["fill"])).strftime("%Y-%m-%d")
        return f"median {day}{flagged}"
    if spec["kind"] == "coded":
        return "the missing code"
    return "a missing category" if spec.get("missing") else f"most frequent {spec['fill']!r}"
