"""Run under mpiexec by tests/test_distributed.py: ``python distributed_worker.py SCENARIO OUT.npz``.

Every rank trains the scenario's model data-parallel; rank 0 writes the weights and the history.
Also importable: ``train(scenario)`` trains the same thing in one process, for the reference."""

import json
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


def main(name, out, dtype):
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
