"""All of a run's epochs in one ``fit``, with the per-epoch work in a callback.

``fit`` once per epoch re-created Keras's data adapter and iterator every epoch
(on torch a ``DataLoader``, on TensorFlow a ``tf.data`` pipeline and the compiled
function's state); one ``fit`` over all epochs reads each epoch's seeded order
from :mod:`fraudkeras.data.batches` and leaves checkpoints and early stopping to
:class:`EpochEnd`, which runs after every other callback's ``on_epoch_end``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras

from fraudkeras.data.batches import EpochBatches, tf_epoch_batches
from fraudkeras.data.splits import Split
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs.config import TrainConfig


class EpochEnd(keras.callbacks.Callback):
    """Calls ``handle(epoch, logs)`` at the end of every epoch; stops ``fit`` when
    it returns True (early stopping)."""

    def __init__(self, handle: Callable[[int, dict[str, Any]], bool]) -> None:
        super().__init__()
        self.handle = handle

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.handle(epoch, dict(logs or {})):
            self.model.stop_training = True


def fit_epochs(
    model: FraudMLP,
    parts: Split,
    config: TrainConfig,
    first_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int | str,
) -> None:
    """Train epochs ``first_epoch .. config.epochs - 1`` in one ``fit``; epoch
    ``e`` sees the rows in ``epoch_order(config.seed, e)``, as a resumed run does."""
    x, y, size = parts.train.x, parts.train.y, config.batch_size
    if keras.backend.backend() == "tensorflow":
        data: Any = tf_epoch_batches(x, y, size, config.seed, first_epoch)
        own: list[keras.callbacks.Callback] = []
        steps: int | None = math.ceil(len(y) / size)
    else:
        data = EpochBatches(x, y, size, config.seed)
        own, steps = [data.callback()], None
    model.fit(
        data,
        steps_per_epoch=steps,
        shuffle=False,  # the order is the dataset's; Keras would shuffle whole batches
        validation_data=(parts.validation.x, parts.validation.y),
        validation_batch_size=size,
        initial_epoch=first_epoch,
        epochs=config.epochs,
        callbacks=[*own, *callbacks],
        verbose=verbose,
    )
