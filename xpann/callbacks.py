"""Callbacks: hooks into ``fit`` at the start and end of training, of each epoch and of each batch.

Epoch logs hold plain floats (``loss``, metrics, and ``val_`` versions), read from the device
once per epoch. A batch hook runs only for callbacks that define one. ``on_train_batch_gradients``
runs after backward and before the optimizer step, when ``model.parameters.grad`` holds the raw
loss gradient and each layer still holds its forward outputs.
"""

import math
import sys
import time
import warnings

from . import diagnostics
from ._checks import non_negative, positive, positive_int
from .errors import TrainingHealthWarning


class Callback:
    """Base class; ``self.model`` is the model being trained."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_gradients(self, batch):
        pass


def _overrides(callback, hook):
    return getattr(type(callback), hook) is not getattr(Callback, hook)


class CallbackList:
    """Calls each hook on every callback, in order; batch hooks only where overridden."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise ValueError(f"callbacks must be xpann.callbacks.Callback objects, got {callback!r}.")
            callback.set_model(model)
        self.batch_callbacks = [c for c in self.callbacks if _overrides(c, "on_train_batch_end")]
        self.gradient_callbacks = [c for c in self.callbacks if _overrides(c, "on_train_batch_gradients")]

    def on_train_begin(self, logs=None):
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for callback in self.batch_callbacks:
            callback.on_train_batch_end(batch, logs)

    def on_train_batch_gradients(self, batch):
        for callback in self.gradient_callbacks:
            callback.on_train_batch_gradients(batch)


class History(Callback):
    """``history[name]`` is the list of per-epoch values; ``epoch`` the epoch numbers (from 0)."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor, mode, min_delta):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Unknown mode {mode!r}; valid modes are auto, min, max.")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be the name of a logged value such as 'val_loss', got {monitor!r}.")
        self.monitor = monitor
        self.min_delta = abs(non_negative("min_delta", min_delta))
        if mode == "auto":
            mode = "max" if any(word in monitor for word in ("acc", "r2")) else "min"
        self.mode = mode
        self._warned = False
        self.best = None

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None and not self._warned:
            self._warned = True
            available = ", ".join(sorted(logs or {})) or "none"
            warnings.warn(
                f"{type(self).__name__} watches {self.monitor!r}, which is not logged "
                f"(available: {available}); pass validation data or choose another monitor.",
                UserWarning, stacklevel=3,
            )
        return value

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    with ``restore_best_weights`` the model ends with the best epoch's weights."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False, verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = positive_int("patience", patience, minimum=0)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.weights_snapshot()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.restore_weights(self.best_weights)
            if self.verbose:
                print(f"Restored the weights of epoch {self.best_epoch + 1} ({self.monitor} {self.best:.4g}).")
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping.")


class ModelCheckpoint(_Monitor):
    """Save the model after each epoch (``path`` may hold ``{epoch}``), or only when
    ``monitor`` improves with ``save_best_only``. ``filepath`` is accepted as Keras spells it."""

    def __init__(self, path=None, monitor="val_loss", save_best_only=False, mode="auto", verbose=0,
                 filepath=None):
        super().__init__(monitor, mode, 0.0)
        if (path is None) == (filepath is None):
            raise ValueError("ModelCheckpoint needs one file path: give path (or filepath), not both.")
        self.filepath = str(path if filepath is None else filepath)
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = self._current(logs)
            if not self._improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved the model to {path}.")


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) when ``monitor`` has not
    improved for ``patience`` epochs; then wait ``cooldown`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0,
                 min_lr=0.0, mode="auto", verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.factor = positive("factor", factor)
        if self.factor >= 1:
            raise ValueError(f"factor must be below 1, got {factor!r}.")
        self.patience = positive_int("patience", patience, minimum=0)
        self.cooldown = positive_int("cooldown", cooldown, minimum=0)
        self.min_lr = non_negative("min_lr", min_lr)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        if not isinstance(self.model.optimizer.learning_rate, float):
            raise ValueError("ReduceLROnPlateau needs a float learning rate, not a schedule.")
        self.best = None
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.cooldown_left == 0:
            optimizer = self.model.optimizer
            new_lr = max(optimizer.learning_rate * self.factor, self.min_lr)
            if new_lr < optimizer.learning_rate:
                optimizer.learning_rate = new_lr
                if self.verbose:
                    print(f"Epoch {epoch + 1}: learning rate reduced to {new_lr:.3g}.")
            self.cooldown_left = self.cooldown
            self.wait = 0


class TerminateOnNaN(Callback):
    """Stop training when an epoch's loss is NaN or infinite, or its last update left a weight that
    is, and put back the weights and the optimizer's state (slots, step count) from the start of that
    epoch. Always on in ``fit``; the checks read the loss and one reduction of the weights once per epoch."""

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._snapshot = self.model.weights_snapshot()
        optimizer = getattr(self.model, "optimizer", None)
        self._optimizer_state = None
        if optimizer is not None and optimizer.built:
            scalars, slots = optimizer.get_state()
            self._optimizer_state = (dict(scalars), {name: slot.copy() for name, slot in slots.items()})

    def on_epoch_end(self, epoch, logs=None):
        bad = {name: value for name, value in (logs or {}).items()
               if name in ("loss", "val_loss") and not math.isfinite(value)}
        if not bad and not self.model.weights_finite():
            bad = {"a weight": "is no longer finite after the epoch's last update"}
        if not bad:
            return
        self.model.restore_weights(self._snapshot)
        if self._optimizer_state is not None:
            self.model.optimizer.set_state(*self._optimizer_state)
        self.model.stop_training = True
        self.stopped_epoch = epoch
        name, value = next(iter(bad.items()))
        became = value if isinstance(value, str) else f"became {value}"
        kept = f"the end of epoch {epoch}" if epoch else "the start of training"
        warnings.warn(
            f"Epoch {epoch + 1}: {name} {became}; training stopped and the weights from {kept} "
            "were put back. Likely cause: exploding gradients. Lower the learning rate, clip the "
            "gradients (clipnorm=1.0) or use a smaller initialisation (he_normal or glorot_uniform).",
            TrainingHealthWarning, stacklevel=2,
        )


class ProgressLogger(Callback):
    """verbose=1: a progress bar per epoch on a terminal, else one line per epoch; verbose=2: one line.
    At an epoch's end the bar gives way to the epoch's line, so no terminal width cuts its numbers."""

    def __init__(self, verbose, epochs, steps, stream=None):
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.stream = stream or sys.stdout
        self.use_bar = verbose == 1 and self.stream.isatty()
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        if self.use_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.epochs}", unit="batch",
                             file=self.stream, leave=False, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        values = " - ".join(f"{name}: {value:.4f}" for name, value in (logs or {}).items())
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        print(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.2f}s - {values}", file=self.stream, flush=True)


class GradientMonitor(Callback):
    """Per-layer gradient health during ``fit``: one record every ``every`` epochs (``per="epoch"``,
    the first epoch always included) or every ``every`` training steps (``per="step"``).

    ``history`` is a list of records, plain host numbers: ``{"epoch", "step", "loss",
    "global_grad_norm", "layers": [{"name", "activation", "grad_norm", "kernel_grad_norm",
    "bias_grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction"}]}``.
    ``epoch`` counts from 0, ``step`` is the number of optimizer steps done; ``grad_norm`` is the
    root mean square over the window's batches of the layer's gradient norm (kernel and bias
    together); ``update_ratio`` is ||update|| / ||weights|| of the window's first step;
    ``dead_fraction`` (ReLU family) is the share of units that never fired over the window's
    batches and ``saturated_fraction`` (sigmoid, tanh) the share of outputs within 1e-3 of the
    activation's bounds, averaged over the samples; None where the activation has no such notion.

    Sums are kept on the device and read once per record. With ``warn`` the health rules of
    ``xpann.diagnostics`` run on each record and issue ``TrainingHealthWarning``s. ``sample=True``
    measures only the first batch of each window (unit activity over its first 64 rows): the
    light check that ``fit`` runs by default. ``problems`` lists each finding ``(kind, layer,
    message)`` once, kind one of vanishing, exploding, dead, saturated. ``save(path)`` writes
    the records as JSON.
    """

    def __init__(self, every=1, per="epoch", warn=True, sample=False):
        if per not in ("epoch", "step"):
            raise ValueError(f"Unknown per {per!r}; valid values are epoch, step.")
        self.every = positive_int("every", every)
        self.per = per
        self.warn = bool(warn)
        self.sample = bool(sample)
        self.history = []
        self.problems = []

    @classmethod
    def health_check(cls):
        """The light check ``fit`` adds when no GradientMonitor is given: one sampled batch per epoch."""
        return cls(every=1, per="epoch", warn=True, sample=True)

    def on_train_begin(self, logs=None):
        self.history = []
        self.problems = []
        self._collector = diagnostics.GradientCollector(self.model, sample=self.sample)
        self._rules = diagnostics.HealthRules(self.model)
        self._first_iteration = self.model.optimizer.iterations
        self._window = 0
        self._epoch = 0
        self._recording = self._collecting = self.per == "step"

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.per == "epoch":
            self._recording = self._collecting = epoch % self.every == 0
            self._window = 0
            self._collector.start()

    def on_train_batch_gradients(self, batch):
        # Only this hook runs per step (no on_train_batch_end), so a monitor that is done
        # collecting costs one attribute test a step. The weights the previous step updated are
        # settled here, at the next step, or at the epoch's end.
        if not self._collecting:
            return
        collector = self._collector
        collector.settle()
        if self.per == "step":
            if self._window == self.every:
                self._record(None)  # the window ended with the previous step
        elif collector.complete:
            self._collecting = False  # a sampled window is measured: the other batches cost nothing
            return
        collector.gradients(first=self._window == 0)
        self._window += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.per == "epoch":
            if self._recording:
                self._collector.settle()
                self._record((logs or {}).get("loss"))
        elif self._window == self.every:
            self._collector.settle()
            self._record(None)

    def _record(self, loss):
        steps = self.model.optimizer.iterations - self._first_iteration
        record = {"epoch": self._epoch, "step": steps, "loss": loss, **self._collector.read()}
        self._window = 0
        self.history.append(record)
        for kind, layer, message in self._rules.check(record, loss, warn=self.warn):
            if not any(seen[:2] == (kind, layer) for seen in self.problems):
                self.problems.append((kind, layer, message))

    def to_json(self, indent=None):
        """The records as JSON text; non-finite numbers become null."""
        return diagnostics.records_to_json(self.history, indent=indent)

    def save(self, path):
        """Write the records to ``path`` as JSON."""
        diagnostics.records_to_json(self.history, path, indent=1)
