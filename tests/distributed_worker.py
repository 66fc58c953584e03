"""Run under mpiexec by tests/test_distributed.py: ``python distributed_worker.py SCENARIO OUT.npz``.

Every rank trains the scenario's model data-parallel; rank 0 writes the weights and the history.
Also importable: ``train(scenario)`` trains the same thing in one process, for the reference.
Further scenarios: ``short_batches`` (``train_short_batches``: batches that do not divide the rows,
L2 penalties), ``overlap`` (``overlap_runs``: the gradient summed in buckets during backward against
the whole sum after it), ``mismatches`` (one setting differs on rank 1: each refused), ``sleep``
(rank 1 stays away past XPANN_DIST_TIMEOUT), ``sleep_in_backward`` (rank 1 stops mid-backward with
a bucket posted) and ``nccl_fake`` (a world of one over NCCL with a stand-in for
cupy.cuda.nccl), besides ``raise`` and ``mismatch``."""

import json
import os
import sys

import numpy

import xpann
from xpann import layers


def data(rows=45, seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((rows, 6))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1)


SCENARIOS = {
    "sgd_momentum_clipped": dict(optimizer=lambda: xpann.optimizers.SGD(learning_rate=0.1, momentum=0.9,
                                                                         global_clipnorm=0.5, weight_decay=1e-3),
                                 layers=lambda: [layers.Dense(8, activation="tanh"), layers.Dense(3, activation="softmax")]),
    "adam_dropout": dict(optimizer=lambda: xpann.optimizers.Adam(learning_rate=0.01),
                         layers=lambda: [layers.Dense(8, activation="relu"), layers.Dropout(0.3),
                                         layers.Dense(3, activation="softmax")]),
    "batch_normalization": dict(optimizer=lambda: xpann.optimizers.Adam(learning_rate=0.01, clipnorm=1.0),
                                layers=lambda: [layers.Dense(8, use_bias=False), layers.BatchNormalization(),
                                                layers.Activation("relu"),
                                                layers.Dense(3, activation="softmax")]),
}


def train(name, dtype="float64"):
    scenario = SCENARIOS[name]
    x, y = data()
    model = xpann.Sequential(scenario["layers"](), input_dim=6, seed=7, dtype=dtype)
    model.compile(optimizer=scenario["optimizer"](), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.2, verbose=0)
    return model, history.history


SHORT_ROWS = 160  # batches of 53 leave a last batch of 1 row; of 7, one of 6 (fewer rows than 3 ranks x 2);
# of 2, fewer rows than 3 ranks in every batch


def short_batch_cases():
    """Item by item: (name, layers, optimizer, batch size, callbacks) trained on 160 rows."""
    sgd = lambda: xpann.optimizers.SGD(learning_rate=0.1, momentum=0.9)  # noqa: E731
    adam = lambda: xpann.optimizers.Adam(learning_rate=0.01)  # noqa: E731
    dense = lambda: [layers.Dense(8, activation="tanh"), layers.Dense(3, activation="softmax")]  # noqa: E731
    normalized = lambda: [layers.Dense(8, use_bias=False), layers.BatchNormalization(),  # noqa: E731
                          layers.Activation("relu"), layers.Dropout(0.2), layers.Dense(3, activation="softmax")]
    l2 = lambda: [layers.Dense(8, activation="tanh", kernel_regularizer=xpann.regularizers.L2(0.5)),  # noqa: E731
                  layers.Dense(3, activation="softmax", kernel_regularizer=xpann.regularizers.L2(0.5))]
    watchers = lambda: [xpann.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0),  # noqa: E731
                        xpann.callbacks.EarlyStopping(monitor="val_loss", patience=1)]
    regression = lambda: [layers.Dense(8, activation="tanh"), layers.Dense(1)]  # noqa: E731
    return [("sgd_53", dense, sgd, 53, list), ("sgd_7", dense, sgd, 7, list),
            ("adam_53", normalized, adam, 53, list), ("adam_7", normalized, adam, 7, list),
            ("l2_53", l2, adam, 53, watchers), ("l2_7", l2, sgd, 7, watchers),
            ("adam_2", dense, adam, 2, list), ("mse_r2_2", regression, adam, 2, list)]


class Seen(xpann.callbacks.Callback):
    """The logs each epoch's callbacks saw, on this rank."""

    def __init__(self):
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


def train_short_batch(case, dtype="float64"):
    """(model, history, logs seen by a callback) of one short-batch case, in this world."""
    x, y = data(SHORT_ROWS)
    validation = data(40, seed=1)
    _, make_layers, make_optimizer, batch_size, make_callbacks = next(c for c in short_batch_cases() if c[0] == case)
    model = xpann.Sequential(make_layers(), input_dim=6, seed=3, dtype=dtype)
    if case.startswith("mse"):  # batches of 2 on 3 ranks: rank 2 never gets a row, r2 still adds up
        y, validation = x[:, 0] + x[:, 1] ** 2, (validation[0], validation[0][:, 0] + validation[0][:, 1] ** 2)
        model.compile(optimizer=make_optimizer(), loss="mse", metrics=["r2", "mae"])
    else:
        model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seen = Seen()
    history = model.fit(x, y, epochs=3, batch_size=batch_size, validation_data=validation, verbose=0,
                        callbacks=[*make_callbacks(), seen])
    return model, history.history, seen.logs


def train_short_batches():
    """{case: (model, history, logs seen by a callback)} for every short-batch case, in this world."""
    return {case[0]: train_short_batch(case[0]) for case in short_batch_cases()}


OVERLAP_CASES = ("batch_normalization", "adam_53", "sgd_7")
"""BatchNormalization on 36 rows in batches of 10; BatchNormalization and Dropout on 160 rows in
batches of 53 (a last batch of 1 row: ranks 1, 2 get none); SGD on batches of 7 (a last one of 6)."""
OVERLAP_BUCKETS = (1, 150)
"""Bucket sizes in bytes: 1 posts every trainable layer alone; 150 joins the last two layers' in
float32 and leaves the output layer alone in float64."""


def overlap_runs():
    """{"dtype/case": {"collectives": entered per run, "equal": whether each bucketed run's weights
    and history equal the whole-gradient run's bit for bit}}: each case trained in this world with
    the gradient summed whole after backward, then in buckets of each ``OVERLAP_BUCKETS`` size."""
    from xpann.distributed import _training

    world = xpann.distributed.world()
    found = {}
    for dtype in ("float32", "float64"):
        for case in OVERLAP_CASES:
            runs = []
            for bucket_bytes in (None, *OVERLAP_BUCKETS):
                os.environ["XPANN_DIST_OVERLAP"] = "0" if bucket_bytes is None else "1"
                if bucket_bytes is not None:
                    _training.BUCKET_BYTES = bucket_bytes
                entered = world._sequence
                model, history = train(case, dtype) if case in SCENARIOS else train_short_batch(case, dtype)[:2]
                runs.append((model.get_weights(), history, world._sequence - entered))
            whole = runs[0]
            found[f"{dtype}/{case}"] = {
                "collectives": [entered for _, _, entered in runs],
                "equal": [all(map(numpy.array_equal, whole[0], weights)) and history == whole[1]
                          for weights, history, _ in runs[1:]]}
    return found


def mismatch_cases(rank):
    """(case, a function that trains with one setting differing on rank 1)."""
    x, y = data()
    other = rank == 1

    def fit(layer_list, metrics=None, **options):
        model = xpann.Sequential(layer_list, input_dim=6, seed=0, dtype="float64")
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=metrics)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, **options)

    dense = lambda **k: [layers.Dense(4, **k), layers.Dense(3, activation="softmax")]  # noqa: E731
    return [
        ("activation", lambda: fit(dense(activation="tanh" if other else "relu"))),
        ("dropout", lambda: fit([layers.Dense(4), layers.Dropout(0.3 if other else 0.2),
                                 layers.Dense(3, activation="softmax")])),
        ("batch_normalization", lambda: fit([layers.Dense(4), layers.BatchNormalization(momentum=0.2 if other else 0.1),
                                             layers.Dense(3, activation="softmax")])),
        ("regularizer", lambda: fit(dense(kernel_regularizer=xpann.regularizers.L2(0.1) if other else None))),
        ("validation", lambda: fit(dense(), validation_data=data(10, seed=2 if other else 1))),
        ("initial_epoch", lambda: fit(dense(), initial_epoch=1 if other else 0)),
        ("metrics", lambda: fit(dense(), metrics=["accuracy"] if other else None)),
        ("callbacks", lambda: fit(dense(), callbacks=[xpann.callbacks.EarlyStopping(monitor="loss",
                                                                                  patience=2 if other else 1)])),
        ("check_same", lambda: xpann.distributed.check_same("preprocessing", {"columns": [
            {"name": "a", "mean": 0.5 + other}]})),
    ]


class FakeDeviceArray:
    """What NCCL's all-reduce reads of a CuPy array: its device pointer, size and dtype."""

    def __init__(self, size, dtype, pointer):
        self.size, self.dtype = size, numpy.dtype(dtype)
        self.data = type("Memory", (), {"ptr": pointer})()


def install_fake_cupy(devices=2):
    """Modules standing in for ``cupy`` and ``cupy.cuda.nccl`` (in sys.modules), recording every
    call into the returned list: the device chosen, the unique id, the communicator, each all-reduce."""
    import types

    calls = []
    cupy, cuda, nccl, runtime = (types.ModuleType(name) for name in ("cupy", "cupy.cuda", "cupy.cuda.nccl",
                                                                      "cupy.cuda.runtime"))

    class Device:
        def __init__(self, index):
            self.index = index

        def use(self):
            calls.append(["Device.use", self.index])

    class Communicator:
        def __init__(self, size, unique_id, rank):
            calls.append(["NcclCommunicator", size, unique_id, rank])

        def allReduce(self, send, receive, count, kind, op, stream):  # noqa: N802 (cupy's name)
            calls.append(["allReduce", send, receive, count, kind, op, stream])

    runtime.getDeviceCount = lambda: devices
    cuda.Device, cuda.runtime, cuda.nccl = Device, runtime, nccl
    cuda.get_current_stream = lambda: type("Stream", (), {"ptr": 77})()
    nccl.get_unique_id = lambda: (calls.append(["get_unique_id"]), "the-unique-id")[1]
    nccl.NcclCommunicator = Communicator
    nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64, nccl.NCCL_INT64, nccl.NCCL_SUM = 7, 8, 4, 0
    cupy.cuda = cuda
    sys.modules.update({"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.nccl": nccl, "cupy.cuda.runtime": runtime})
    return calls


def main(name, out, dtype):
    if name == "short_batches":  # items: every batch split over 1-3 ranks; the penalty counted once
        xpann.distributed.init()
        results = train_short_batches()
        for _, history, seen in results.values():  # every callback saw what History recorded
            assert [logs["loss"] for logs in seen] == history["loss"], (seen, history)
        if xpann.distributed.is_main():
            arrays = {f"{case}/{i}": weight for case, (model, _, _) in results.items()
                      for i, weight in enumerate(model.get_weights())}
            numpy.savez(out, **arrays, history=json.dumps({case: h for case, (_, h, _) in results.items()}))
        return
    if name == "mismatches":  # each case refused on every rank before training, naming what differs
        xpann.distributed.init()
        messages = {}
        for case, run in mismatch_cases(xpann.distributed.rank()):
            try:
                run()
                messages[case] = None
            except ValueError as error:
                messages[case] = str(error)
        if xpann.distributed.is_main():
            with open(out, "w") as file:
                json.dump(messages, file)
        return
    if name == "overlap":  # the gradient summed in buckets during backward equals the whole sum
        xpann.distributed.init()
        found = overlap_runs()
        if xpann.distributed.is_main():
            with open(out, "w") as file:
                json.dump(found, file)
        return
    if name == "sleep_in_backward":  # rank 1 stops mid-backward, after posting a bucket: the job ends, naming it
        import time

        os.environ["XPANN_DIST_OVERLAP"] = "1"
        xpann.distributed._training.BUCKET_BYTES = 1
        xpann.distributed.init()
        x, y = data()
        model = xpann.Sequential([layers.Dense(8, name="hidden"), layers.Activation("relu", name="relu"),
                                  layers.Dense(3, activation="softmax", name="output")], input_dim=6, seed=0)
        model.compile("sgd", "sparse_categorical_crossentropy")
        if xpann.distributed.rank() == 1:
            forward = layers.Activation.forward
            steps = []

            def forward_then_stall(layer, node, x, training):
                y, backprop = forward(layer, node, x, training)
                if not training:
                    return y, backprop
                steps.append(None)

                def stalled(dy):
                    if len(steps) == 2:
                        time.sleep(40)
                    return backprop(dy)

                return y, stalled

            layers.Activation.forward = forward_then_stall
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        return
    if name == "sleep":  # rank 1 stays away past XPANN_DIST_TIMEOUT: the job ends, naming it
        xpann.distributed.init()
        x, y = data()
        model = xpann.Sequential([layers.Dense(3, activation="softmax")], input_dim=6, seed=0)
        model.compile("sgd", "sparse_categorical_crossentropy")

        class Sleep(xpann.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if xpann.distributed.rank() == 1:
                    import time

                    time.sleep(40)

        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Sleep()])
        return
    if name == "nccl_fake":  # a world of one over NCCL, with a stand-in for cupy.cuda.nccl
        calls = install_fake_cupy()
        assert xpann.distributed.init("nccl") == 1
        world = xpann.distributed.world()
        array = FakeDeviceArray(12, "float32", 1000)
        assert world.allreduce(array, None, what="the gradient all-reduce") is array
        world.allreduce(FakeDeviceArray(5, "float64", 2000))
        with open(out, "w") as file:
            json.dump({"engine": world.engine, "size": world.size, "rank": world.rank, "calls": calls}, file)
        return
    if name == "raise":
        world = xpann.distributed.init()
        x, y = data()
        model = xpann.Sequential([layers.Dense(3, activation="softmax")], input_dim=6, seed=0)
        model.compile("sgd", "sparse_categorical_crossentropy")

        class Fail(xpann.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1 and xpann.distributed.rank() == world - 1:
                    raise RuntimeError("a deliberate failure")

        model.fit(x, y, epochs=50, batch_size=4, verbose=0, callbacks=[Fail()])
        return
    if name == "mismatch":  # rank 1 draws other weights: refused before training, on every rank
        xpann.distributed.init()
        x, y = data()
        model = xpann.Sequential([layers.Dense(3, activation="softmax")], input_dim=6, seed=xpann.distributed.rank())
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        return
    assert xpann.distributed.init() > 1
    model, history = train(name, dtype)
    if xpann.distributed.is_main():
        numpy.savez(out, *model.get_weights(), history=json.dumps(history))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "float64")
