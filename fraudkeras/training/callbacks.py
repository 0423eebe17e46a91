"""Keras callbacks that training adds to every ``fit``."""

from __future__ import annotations

import time
from typing import Any

import keras

from fraudkeras._core import interrupts


class InterruptCheck(keras.callbacks.Callback):
    """Re-raises a Ctrl-C that a finalizer swallowed (see :mod:`fraudkeras._core.interrupts`)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch (the first includes compilation)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(round(time.perf_counter() - self._start, 4))


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """Keras's ``SwapEMAWeights(swap_on_epoch=True)``: from each epoch's end to the
    next epoch's start the model holds the optimizer's averaged weights (and the
    optimizer the trained ones), so validation, checkpoints and the best epoch use
    the averages. A run resumed from a checkpoint starts in that swapped state, as
    the checkpoint was written in it (``resumed``): its first epoch swaps back, and
    it trains on as the uninterrupted run did."""

    def __init__(self, resumed: bool = False) -> None:
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed
