"""Sequential: a stack of layers with compile, fit, evaluate, predict and weight access.

The data go to the device once per call and batches are sliced there. Inside an epoch
nothing is read back to the host: losses and metrics are summed on the device and read once
at the epoch's end.
"""

import contextlib
import math
import numbers
import warnings

from . import _inputs, _weights, callbacks as callbacks_module, distributed, io, layers as layers_module, losses
from . import optimizers
from . import metrics as metrics_module
from ._checks import float_dtype, fraction, positive_int
from ._epochs import EpochIterator
from .backend import host_array, host_generator, resolve_backend
from .backend._registry import BACKEND_NAMES
from .distributed._training import DataParallel, describe_callbacks
from .plan import StepPlan

EVALUATION_BATCH = 8192
_FEATURES_ONLY = object()  # _prepare's marker for "x only" (a y of None is a user mistake)


class Sequential:
    """Layers applied in order. With ``input_dim`` the weights exist at once, else at the first fit.

    ``seed`` fixes the initial weights (drawn on the host, alike on every backend), the shuffles
    and the dropout masks; ``backend`` pins the model to "numpy", "cupy" or "auto".
    """

    def __init__(self, layers=None, input_dim=None, seed=None, backend=None, dtype="float32", name=None):
        if backend is not None and isinstance(backend, str) and backend.lower() not in BACKEND_NAMES:
            raise ValueError(f"Unknown backend {backend!r}; valid names are {', '.join(BACKEND_NAMES)}.")
        if backend is not None and not isinstance(backend, str) and not (
                hasattr(backend, "xp") and hasattr(backend, "to_numpy")):
            raise ValueError(f"backend must be a name ({', '.join(BACKEND_NAMES)}) or a Backend, not {backend!r}.")
        dtype = float_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be a whole number >= 0 or None, got {seed!r}.")
        seed = None if seed is None else int(seed)
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise ValueError(f"layers must be a list of xpann layers, got {layers!r}.")
        self._parameters = None
        self._plan = None
        self._fuse = True
        self.layers = []
        try:  # a failed construction leaves its layers free for another model
            for layer in layers or []:
                self.add(layer)
            self._init_state(seed, dtype, name, backend, input_dim)
        except Exception:
            for layer in self.layers:
                layer.model = None
            raise

    def _init_state(self, seed, dtype, name, backend, input_dim):
        self.seed = seed
        self.dtype = str(dtype)
        self.name = name or "sequential"
        self.metadata = {}
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.metric_names = []
        self.history = None
        self.stop_training = False
        self._backend_choice = backend
        self._backend = None
        self._rng = host_generator(seed)
        if input_dim is not None:
            self.build(input_dim)

    def __repr__(self):
        layers = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{layers}], input_dim={self.input_dim}, dtype={self.dtype!r})"

    # ----- structure -------------------------------------------------------------------------

    def add(self, layer):
        if not isinstance(layer, layers_module.Layer):
            raise ValueError(f"Sequential takes xpann layers, got {layer!r}.")
        if self.built:
            raise ValueError("Layers cannot be added after the model is built.")
        if layer.model is not None:
            where = "twice in this model" if layer.model is self else "in another model"
            raise ValueError(f"{layer!r} is already used {where}; a layer holds one model's weights, "
                             "so create a new layer object for each place.")
        if isinstance(layer, layers_module.CategoryEmbedding) and self.layers:
            raise ValueError(f"CategoryEmbedding must be the first layer (it reads integer codes from the raw "
                             f"input), got it at position {len(self.layers) + 1}.")
        layer.model = self
        self.layers.append(layer)

    @property
    def built(self):
        return self._plan is not None

    @property
    def backend(self):
        """The Backend object the model runs on (resolved when the model is built)."""
        return self._backend if self._backend is not None else resolve_backend(self._backend_choice)

    @property
    def input_dim(self):
        return self.layers[0].input_dim if self.built else None

    @property
    def output_dim(self):
        return self.layers[-1].output_dim if self.built else None

    @property
    def plan(self):
        """The step plan (nodes, flat buffers, fusion choices), once the model is built."""
        return self._plan

    def build(self, input_dim):
        """Create the weights for inputs of ``input_dim`` features."""
        if not self.layers:
            raise ValueError("The model has no layers; add at least one Dense layer.")
        input_dim = positive_int("input_dim", input_dim)
        backend = resolve_backend(self._backend_choice)
        width = input_dim
        for layer in self.layers:
            width = layer.build(width)
        plan = StepPlan(self.layers, self.layer_names(), backend, self.dtype, self._rng, fuse=self._fuse)
        self._backend = backend
        self._plan = plan
        self._parameters = plan.parameters
        self._device_generator = plan.generator
        if self.loss is not None:
            plan.set_loss(self.loss)
        if self.optimizer is not None:
            self.optimizer.build(backend, plan.parameters.data)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"The model has no weights yet; give input_dim or call fit before {what}.")

    def count_params(self):
        """The number of trainable parameters."""
        self._require_built("count_params")
        return self._parameters.size

    def layer_names(self):
        """A unique name per layer: its own, or its class name in snake case and its position
        (dense_1, dropout_2, batch_normalization_3...), with a further _2, _3 where that is a
        name given to another layer. Two layers given the same name are a ValueError."""
        given = [layer.name for layer in self.layers if layer.name]
        repeated = sorted({name for name in given if given.count(name) > 1})
        if repeated:
            raise ValueError(f"Layer names must differ: {', '.join(map(repr, repeated))} is given to more than one "
                             "layer.")
        taken, names = set(given), []
        for i, layer in enumerate(self.layers):
            name = layer.name
            if not name:
                base = name = f"{_snake_case(type(layer).__name__)}_{i + 1}"
                suffix = 2
                while name in taken:
                    name, suffix = f"{base}_{suffix}", suffix + 1
                taken.add(name)
            names.append(name)
        return names

    def named_weights(self):
        """``{"dense_1/kernel": array, "dense_1/bias": array, ...}``: every tensor (trainable or
        state) as a host numpy copy, in get_weights' order, named ``layer name/tensor name``."""
        self._require_built("named_weights")
        to_numpy = self._backend.to_numpy
        return {name: to_numpy(view).copy() for name, view in self._plan.named_tensors()}

    def summary(self, print_fn=print):
        """Print a table of the layers, their output widths and parameter counts (trainable and state)."""
        rows = [("Layer", "Output", "Params")]
        total = kept = 0
        for index, (name, layer) in enumerate(zip(self.layer_names(), self.layers)):
            count = sum(math.prod(spec[1]) for spec in layer.parameter_specs()) if self.built else 0
            state = sum(math.prod(spec[1]) for spec in layer.state_specs()) if self.built else 0
            total += count
            kept += state
            detail = f" ({layer.activation.name})" if layer.activation is not None else ""
            params = f"{count:,}" + (f" + {state:,} state" if state else "")
            rows.append((name + detail, str(layer.output_dim) if self.built else "?", params))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"Model: {self.name} (backend {self.backend.name}, {self.dtype})"]
        for row in rows:
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}")
        lines.append(f"Total parameters: {total:,}" + (f" (and {kept:,} non-trainable state values)" if kept else ""))
        print_fn("\n".join(lines))

    # ----- training set-up -------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer (name or object), the loss (name or object) and metric names."""
        if loss is None:
            raise ValueError(f"compile needs a loss; valid names are {', '.join(losses.LOSSES.names())}.")
        optimizer = optimizers.get(optimizer)
        loss = losses.get(loss)
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise ValueError(f"metrics must be a list of metric names, got {metrics!r}.")
        metric_names = list(metrics or [])
        metric_objects = [metrics_module.get(name, loss) for name in metric_names]
        # Assigned only once everything is valid: a compile that raises leaves the model as it was.
        self.optimizer, self.loss = optimizer, loss
        self.metric_names, self.metrics = metric_names, metric_objects
        if self.built:
            self._plan.set_loss(loss)
            self.optimizer.build(self._backend, self._parameters.data)

    def _require_compiled(self, what):
        if self.loss is None:
            raise ValueError(f"Call compile(optimizer=..., loss=...) before {what}.")

    # ----- the training step -----------------------------------------------------------------

    def _train_step(self, x, y, step=0, gradient_hook=None, need_output=True, sample_weight=None):
        """Forward, backward and one optimizer step (see ``StepPlan.train_step``)."""
        return self._plan.train_step(self.optimizer, x, y, sample_weight, gradient_hook, need_output, step)

    def compute_gradients(self, x, y, sample_weight=None):
        """The loss and the gradient of every trainable tensor for one batch, without updating
        (training-mode forward, so dropout is applied and moving statistics move). Returns
        (loss float, [numpy arrays] in the order of ``parameters.entries``)."""
        self._require_compiled("compute_gradients")
        x, y = self._prepare(x, y)
        weights = self._sample_weights(sample_weight, None, y, x.shape[0])
        plan = self._plan
        output = plan.forward(x)
        loss, grad = plan.loss_and_gradient(y, output, plan.logits, weights)
        plan.backward(grad)
        if plan.regularized:
            loss = loss + plan.penalty(with_gradient=True)
        backend = self._backend
        return float(loss), [backend.to_numpy(g).copy() for g in self._parameters.tensors(self._parameters.grad)]

    def _prepare(self, x, y=_FEATURES_ONLY, names=("x", "y")):
        """Check, convert and upload x (and y); build the model on first sight of the data."""
        x = _inputs.features(self.backend, x, self.dtype, self.input_dim, what=names[0])
        if not self.built:
            self.build(x.shape[1])
        self._plan.check_input(x)
        backend = self._backend
        if y is _FEATURES_ONLY:
            return x
        y = _inputs.targets(backend, y, self.loss, self.output_dim, self.dtype, what=names[1])
        _inputs.same_length(x, y, *names)
        return x, y

    def _sample_weights(self, sample_weight, class_weight, y, rows, what="sample_weight"):
        return _weights.sample_weights(self._backend, sample_weight, class_weight, y, self.loss, self.output_dim,
                                       self.dtype, rows, what=what)

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One forward, backward and update on exactly this batch; returns the loss before the update."""
        self._require_compiled("train_on_batch")
        x, y = self._prepare(x, y)
        weights = self._sample_weights(sample_weight, class_weight, y, x.shape[0])
        if not self.optimizer.built:
            self.optimizer.build(self._backend, self._parameters.data)
        with self._backend.matmul_threads(self._plan.matmul_products(x.shape[0])):
            loss, _ = self._train_step(x, y, need_output=False, sample_weight=weights)
        return float(loss)

    def fit(self, x, y, epochs=1, batch_size=32, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, sample_weight=None, class_weight=None, initial_epoch=0):
        """Train for ``epochs`` passes over (x, y); ``batch_size=None`` is full-batch gradient descent.

        ``validation_split`` holds out the last fraction of the samples (before shuffling);
        ``validation_data`` is (x, y) or (x, y, sample_weight). A batch's loss is
        ``sum(w_i * loss_i) / batch size`` with ``w_i`` from ``sample_weight`` times
        ``class_weight[class]``. ``initial_epoch`` numbers the epochs from there (resuming).
        Returns the History callback: ``history.history["loss"]`` has one float per epoch.
        """
        self._require_compiled("fit")
        epochs = positive_int("epochs", epochs, minimum=0)
        initial_epoch = positive_int("initial_epoch", initial_epoch, minimum=0)
        if initial_epoch > epochs:
            raise ValueError(f"initial_epoch ({initial_epoch}) must not exceed epochs ({epochs}).")
        validation_split = fraction("validation_split", validation_split)
        x, y = self._prepare(x, y)
        weights = self._sample_weights(sample_weight, class_weight, y, x.shape[0])
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a pair (x_val, y_val) or a triple (x_val, y_val, "
                                 "sample_weight_val).")
            x_val, y_val = self._prepare(*validation_data[:2], names=("validation x", "validation y"))
            w_val = None if len(validation_data) == 2 else self._sample_weights(
                validation_data[2], None, y_val, x_val.shape[0], what="validation sample_weight")
            validation = (x_val, y_val, w_val)
        elif validation_split:
            split = int(x.shape[0] * (1 - validation_split))
            if split < 1 or split == x.shape[0]:
                raise ValueError(
                    f"validation_split={validation_split} leaves no samples for "
                    f"{'training' if split < 1 else 'validation'} out of {x.shape[0]}."
                )
            validation = (x[split:], y[split:], None if weights is None else weights[split:])
            x, y = x[:split], y[:split]
            weights = None if weights is None else weights[:split]
        n = x.shape[0]
        batch_size = n if batch_size is None else min(positive_int("batch_size", batch_size), n)
        world = distributed.world()
        parallel = None
        if world.size > 1:
            parallel = self._data_parallel(world, x, y, weights, batch_size, epochs, shuffle, initial_epoch,
                                           validation, callbacks)
            verbose = verbose if world.rank == 0 else 0
        batches = EpochIterator(self._backend, x, y, weights, batch_size, shuffle, self._rng,
                                shard=None if parallel is None else (world.rank, world.size))

        self.history = callbacks_module.History()
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise ValueError(f"callbacks must be a list of xpann.callbacks.Callback objects, got {callbacks!r}.")
        given = list(callbacks or [])
        extra = [] if any(isinstance(c, callbacks_module.TerminateOnNaN) for c in given) else [
            callbacks_module.TerminateOnNaN()]
        if not any(isinstance(c, callbacks_module.GradientMonitor) for c in given):
            extra.append(callbacks_module.GradientMonitor.health_check())  # light, one sampled batch per epoch
        progress = [callbacks_module.ProgressLogger(verbose, epochs, batches.steps)] if verbose else []
        callback_list = callbacks_module.CallbackList([self.history, *extra, *given, *progress], self)
        if not self.optimizer.built:
            self.optimizer.build(self._backend, self._parameters.data)

        gradient_hook = callback_list.on_train_batch_gradients if callback_list.gradient_callbacks else None
        self.stop_training = False
        with contextlib.ExitStack() as stack:
            if parallel is not None:
                stack.callback(parallel.remove)
                parallel.install()
                if world.rank:  # only rank 0 speaks
                    stack.enter_context(warnings.catch_warnings())
                    warnings.simplefilter("ignore")
            callback_list.on_train_begin()
            with self._backend.matmul_threads(self._plan.matmul_products(batch_size)) as threads:
                self._thread_plan = threads  # what the last fit ran on, for benchmarks
                try:
                    self._fit_epochs(batches, range(initial_epoch, epochs), validation, callback_list, gradient_hook,
                                     threads, parallel)
                except Exception as error:
                    if parallel is not None:  # the other ranks would wait in the next collective
                        world.abort(f"{type(error).__name__}: {error}")
                    raise
            callback_list.on_train_end()
        return self.history

    def _data_parallel(self, world, x, y, weights, batch_size, epochs, shuffle, initial_epoch=0, validation=None,
                       callbacks=None):
        """The data-parallel set-up, after checking that every rank trains alike: the model's
        configuration, compile and fit settings, callbacks, data and initial weights (a rank that
        differed would train otherwise, or wait in a collective the others never enter)."""
        parallel = DataParallel(world, self._plan, self._backend)
        print_ = parallel.fingerprint
        model = {key: value for key, value in self.get_config().items() if key != "seed"}
        parallel.check_alike(
            data_shape=[list(x.shape), list(y.shape)], seed=self.seed, model=model, loss=losses.serialize(self.loss),
            metrics=list(self.metric_names), optimizer=optimizers.serialize(self.optimizer), batch_size=batch_size,
            epochs=epochs, initial_epoch=initial_epoch, shuffle=bool(shuffle), backend=self._backend.name,
            data={"x checksum": print_(x), "y checksum": print_(y),
                  "sample weights checksum": None if weights is None else print_(weights)},
            validation_data=None if validation is None else {
                "shape": list(validation[0].shape), "x checksum": print_(validation[0]),
                "y checksum": print_(validation[1]),
                "sample weights checksum": None if validation[2] is None else print_(validation[2])},
            callbacks=describe_callbacks([] if callbacks is None else callbacks),
            weights={"checksum": print_(self._parameters.data), "state checksum": print_(self._plan.state.data)})
        return parallel

    def _fit_epochs(self, batches, epochs, validation, callback_list, gradient_hook, threads, parallel=None):
        backend = self._backend
        plan, optimizer = self._plan, self.optimizer
        need_output = bool(self.metrics)
        batch_end = callback_list.on_train_batch_end if callback_list.batch_callbacks else None
        # Each step's loss goes into one device array, summed once at the epoch's end: one
        # operation per step instead of a product and a sum of device scalars.
        step_losses = backend.xp.zeros(batches.steps, dtype="float64")
        batch_size = batches.batch_size
        for epoch in epochs:
            if parallel is not None:
                parallel.begin_epoch(epoch)
            callback_list.on_epoch_begin(epoch)
            done = 0
            for metric in self.metrics:
                metric.reset()
            for step, (xb, yb, wb) in enumerate(batches.epoch()):
                if threads is not None:
                    threads.refresh()
                if parallel is not None:
                    parallel.before_step(*batches.current)
                loss, output = plan.train_step(optimizer, xb, yb, wb, gradient_hook, need_output, step)
                step_losses[step] = loss
                done = step + 1
                for metric in self.metrics:
                    metric.update(backend, yb, output)
                if batch_end is not None:
                    batch_end(step)
                    if self.stop_training and parallel is None:  # a batch callback ended training mid-epoch
                        break
            if parallel is not None:  # each rank's share of the losses and metric sums, summed once
                parallel.reduce_epoch(step_losses[:done], self.metrics)
            # all batches but the last of an epoch hold batch_size samples
            seen = min(done * batch_size, batches.rows)
            full = float(step_losses[:done - 1].sum()) * batch_size if done > 1 else 0.0
            logs = {"loss": (full + float(step_losses[done - 1]) * (seen - (done - 1) * batch_size)) / seen}
            logs.update({metric.name: metric.result() for metric in self.metrics})
            if validation is not None:
                logs.update({f"val_{k}": v for k, v in self._evaluate_arrays(*validation).items()})
            callback_list.on_epoch_end(epoch, logs)
            if parallel is not None:
                self.stop_training = parallel.follow_main(self.stop_training)
            if self.stop_training:
                break

    # ----- inference -------------------------------------------------------------------------

    def _evaluate_arrays(self, x, y, weights=None, batch_size=None):
        """Loss and metrics over (x, y) in batches; the metric objects are this call's own, so
        calls from several threads do not mix their sums."""
        batch_size = batch_size or EVALUATION_BATCH
        plan, backend = self._plan, self._backend
        metrics = [metrics_module.get(name, self.loss) for name in self.metric_names]
        total = None
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            wb = None if weights is None else weights[start:start + batch_size]
            output, logits = plan.infer(xb)
            loss, _ = plan.loss_and_gradient(yb, output, logits, wb)
            weighted = loss * xb.shape[0]
            total = weighted if total is None else total + weighted
            for metric in metrics:
                metric.update(backend, yb, output)
        loss = float(total) / x.shape[0]
        if plan.regularized:
            loss += float(plan.penalty())
        results = {"loss": loss}
        results.update({metric.name: metric.result() for metric in metrics})
        return results

    def evaluate(self, x, y, batch_size=None, verbose=0, sample_weight=None):
        """The loss and metrics on (x, y) as a dict of floats; with ``sample_weight`` the loss is
        ``sum(w_i * loss_i) / n``."""
        self._require_compiled("evaluate")
        x, y = self._prepare(x, y)
        weights = self._sample_weights(sample_weight, None, y, x.shape[0])
        batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        results = self._evaluate_arrays(x, y, weights, batch_size)
        if verbose:
            print(" - ".join(f"{name}: {value:.4f}" for name, value in results.items()))
        return results

    def predict(self, x, batch_size=None):
        """The model's outputs for x as a host numpy array, whatever the backend."""
        self._require_built("predict")
        x = self._prepare(x)
        batch_size = EVALUATION_BATCH if batch_size is None else positive_int("batch_size", batch_size)
        plan = self._plan
        # copies: an output may be a view of the input (a model of element-wise layers)
        parts = [plan.infer(x[start:start + batch_size])[0].copy() for start in range(0, x.shape[0], batch_size)]
        output = parts[0] if len(parts) == 1 else self._backend.xp.concatenate(parts)
        return self._backend.to_numpy(output)

    # ----- weights ---------------------------------------------------------------------------

    def get_weights(self):
        """Layer by layer, its trainable tensors then its state, as host numpy copies:
        [kernel_1, bias_1, ..., gamma, beta, moving_mean, moving_variance, ...]."""
        self._require_built("get_weights")
        return list(self.named_weights().values())

    def set_weights(self, weights):
        """Set every tensor from a list in get_weights' layout; a wrong shape names the layer.
        Everything is checked before anything is assigned."""
        self._require_built("set_weights")
        weights = list(weights)
        named = self._plan.named_tensors()
        if len(weights) != len(named):
            raise ValueError(f"set_weights needs {len(named)} arrays (kernel and bias per Dense layer), "
                             f"got {len(weights)}.")
        values = []
        for value, (name, view) in zip(weights, named):
            value = value if self._backend.is_array(value) else host_array(value)
            if tuple(value.shape) != tuple(view.shape):
                layer, tensor = name.split("/", 1)
                raise ValueError(f"Layer {layer!r}: {tensor} must have shape {tuple(view.shape)}, got "
                                 f"{tuple(value.shape)}.")
            values.append(value)
        for value, (_, view) in zip(values, named):
            view[...] = self._backend.asarray(value, dtype=view.dtype)

    def weights_snapshot(self):
        """A device copy of all tensors (trainable and state), for restore_weights."""
        self._require_built("weights_snapshot")
        return self._parameters.data.copy(), self._plan.state.data.copy()

    def restore_weights(self, snapshot):
        data, state = snapshot
        self._parameters.data[...] = data
        self._plan.state.data[...] = state

    def weights_finite(self):
        """True when every tensor (trainable and state) is finite: one reduction, one host read."""
        self._require_built("weights_finite")
        xp = self._backend.xp
        return bool(xp.isfinite(self._parameters.data).all()) and bool(xp.isfinite(self._plan.state.data).all())

    @property
    def blas_threads(self):
        """The BLAS thread count the last ``fit`` ran its products on (None before any, or on a GPU)."""
        plan = getattr(self, "_thread_plan", None)
        return None if plan is None else plan.threads

    @property
    def parameters(self):
        """The flat parameter buffer (data, grad, segments), for optimizers and diagnostics."""
        return self._parameters

    # ----- persistence -----------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "seed": self.seed,
            "input_dim": self.input_dim,
            "layers": [layers_module.serialize(layer) for layer in self.layers],
        }

    def save(self, path):
        """Write the model to ``path`` (.npz) atomically; no pickle inside. The file keeps the
        tensors by name, the configuration, the optimizer's state and the random generators'
        state, so a loaded model predicts alike and continues training as this one would. In
        data-parallel training only rank 0 writes (every rank holds the same model)."""
        self._require_built("save")
        if not distributed.is_main():
            return
        config = {
            "model": self.get_config(),
            "metadata": self.metadata,
            "random_state": {"host": io.generator_state(self._rng),
                             "dropout": io.generator_state(self._device_generator)},
            "compile": None,
            "tensors": list(self.named_weights()),
        }
        arrays = {f"{TENSOR_PREFIX}{name}": value for name, value in self.named_weights().items()}
        if self.loss is not None:
            scalars, slots = self.optimizer.get_state() if self.optimizer.built else ({}, {})
            config["compile"] = {
                "loss": losses.serialize(self.loss),
                "optimizer": optimizers.serialize(self.optimizer),
                "optimizer_state": scalars,
                "metrics": list(self.metric_names),
            }
            arrays.update({f"optimizer_{name}": self._backend.to_numpy(value) for name, value in slots.items()})
        io.write_model_file(path, config, arrays)


TENSOR_PREFIX = "tensor:"
"""Model-file members that hold tensors are named ``tensor:layer/tensor`` (files of the first
round numbered them ``weight_0, weight_1, ...`` in get_weights' order, and still load)."""


def _snake_case(name):
    """BatchNormalization -> batch_normalization."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def load_model(path, backend=None):
    """The model saved at ``path``, on ``backend`` (default: the one in force). The file is checked
    before anything is allocated: the config's sizes (``_model_file_checks``), then each stored
    tensor's header against the shape the config builds; weights must be finite. A damaged file is
    one ValueError naming it and the fault."""
    from . import _model_file_checks

    with io.ModelFile(path) as file:
        config = file.config
        try:
            spec = config["model"]
            input_dim = _model_file_checks.check_model_config(spec)
            model = Sequential([layers_module.deserialize(layer) for layer in spec["layers"]], seed=spec.get("seed"),
                               dtype=spec.get("dtype", "float32"), backend=backend, name=spec.get("name"))
            shapes = _model_file_checks.planned_tensors(model.layers, model.layer_names(), input_dim)
            if config.get("tensors") is not None:
                if list(config["tensors"]) != list(shapes):
                    raise ValueError(f"the stored tensors {config['tensors']} do not match the layers' tensors "
                                     f"{list(shapes)}.")
                members = [f"{TENSOR_PREFIX}{name}" for name in shapes]
            else:  # the first round's numbered members
                members = [f"weight_{i}" for i in range(len(shapes))]
            weights = [file.read(member, shape) for member, shape in zip(members, shapes.values())]
            missing = [member for member, weight in zip(members, weights) if weight is None]
            if missing:
                raise ValueError(f"{file.path} holds an incomplete or damaged xpann model (no member {missing[0]!r}).")
            model.build(input_dim)
            model.set_weights(weights)
            compiled = config.get("compile")
            if compiled:
                model.compile(optimizer=optimizers.deserialize(compiled["optimizer"]),
                              loss=losses.deserialize(compiled["loss"]), metrics=compiled.get("metrics"))
                scalars = compiled.get("optimizer_state") or {}
                positive_int("the optimizer's iterations", scalars.get("iterations", 0), minimum=0)
                slots = {name: file.read(f"optimizer_{name}", slot.shape)
                         for name, slot in model.optimizer.slots.items()}
                slots = {name: value for name, value in slots.items() if value is not None}
                if scalars or slots:
                    model.optimizer.set_state(scalars, slots)
            random_state = config.get("random_state") or {}
            io.set_generator_state(model._rng, random_state.get("host"))
            io.set_generator_state(model._device_generator, random_state.get("dropout"))
        except ValueError as error:
            message = str(error)
            raise ValueError(message if message.startswith(file.path) else f"{file.path}: {message}") from None
        except (KeyError, TypeError, AttributeError, IndexError, OverflowError, RecursionError) as error:
            raise ValueError(f"{file.path} holds an incomplete or damaged xpann model "
                             f"({type(error).__name__}: {error}).") from None
    metadata = config.get("metadata")
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model
