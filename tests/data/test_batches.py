"""The per-epoch data path into ``fit``: each epoch's order is a pure function of
(seed, epoch), the same on every backend and in a resumed process."""

from __future__ import annotations

import keras
import numpy as np

from helpers import BACKEND


def _reference_batches(x, y, batch_size, seed, epoch):
    order = np.random.default_rng([seed, epoch]).permutation(len(y))
    return [
        (x[order][i : i + batch_size], y[order][i : i + batch_size])
        for i in range(0, len(y), batch_size)
    ]


def _data(rows: int = 1000):
    x = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    return x, np.arange(rows) % 7


def test_epoch_batches_follow_the_seeded_order_of_their_epoch() -> None:
    from fraudkeras.data.batches import EpochBatches

    x, y = _data()
    batches = EpochBatches(x, y, 128, seed=5)
    assert len(batches) == 8  # 1000 rows: 7 full batches and 104 rows
    for epoch in (0, 3, 1):
        batches.epoch = epoch
        got = [batches[i] for i in range(len(batches))]
        for (gx, gy), (ex, ey) in zip(got, _reference_batches(x, y, 128, 5, epoch), strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(gx), ex)
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(gy), ey)


def test_fit_reads_each_epoch_in_its_own_order() -> None:
    """What a model sees, batch by batch, over a 3-epoch fit starting at epoch 1:
    the rows its ``prepare`` made, once, in each epoch's order, and no more steps
    than an epoch has, also when several steps run per compiled call (10 steps
    an epoch, 4 per call: Keras's TensorFlow loop once ran 12)."""
    from fraudkeras.data.batches import EpochBatches
    from fraudkeras.modeling.features import PREPARED
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.epochs import fit_epochs

    x, y = _data(300)
    seen: list[np.ndarray] = []

    class Recorder(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

        def prepare(self, rows):
            return rows * 2.0 + 1.0  # what FraudMLP does once: transform and scale

        def train_step(self, *args):  # jax: (state, data) -> (logs, state)
            seen.append(keras.ops.convert_to_numpy(args[-1][0][PREPARED]))
            logs = {"rows": keras.ops.zeros(())}  # tensorflow needs an output
            return (logs, args[0]) if BACKEND == "jax" else logs

    model = Recorder()
    model(x[:2])
    per_call = 1 if BACKEND == "torch" else 4  # Keras's torch trainer accepts only 1
    model.compile(optimizer="sgd", run_eagerly=True, steps_per_execution=per_call)
    config = TrainConfig(epochs=4, batch_size=30, seed=9)
    batches = EpochBatches(model.prepare(x), y, 30, 9, PREPARED)
    fit_epochs(model, batches, config, 1, [], verbose=0)  # type: ignore[arg-type]
    expected = [b * 2.0 + 1.0 for e in (1, 2, 3) for b, _ in _reference_batches(x, y, 30, 9, e)]
    assert len(seen) == len(expected) == 30, BACKEND
    for got, want in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)
