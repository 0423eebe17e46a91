"""The training data path into ``fit``: batches in a seeded order per epoch.

Epoch ``e``'s order is ``default_rng([seed, e]).permutation(n)``, a pure function
of ``(seed, epoch)``: Keras's own ``shuffle`` draws from each backend's global
RNG, which a resumed process could not replay. One ``fit`` over all epochs reads
a new order every epoch; :meth:`SeededBatches.callback` tells the dataset which.

Two datasets, both :class:`SeededBatches` (a ``keras.utils.PyDataset``): rows in
memory (:class:`EpochBatches`) and rows streamed from Parquet files
(:class:`fraudkeras.data.stream_batches.StreamBatches`). Either can be *placed*
for data parallelism: each batch padded to a multiple of the devices with a 0/1
mask (``pad_to``), and one process's contiguous part of every padded global
batch (``process`` of ``processes``). How a backend feeds them to ``fit`` (a
torch ``DataLoader``, a ``tf.data`` pipeline) is the backend's
(:meth:`fraudkeras.backends.Backend.feed`). With ``key``, each batch's features
come as ``{key: rows}`` (rows prepared once, see ``FraudMLP.prepare``).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np


def epoch_order(seed: int, epoch: int, rows: int, process: int | None = None) -> np.ndarray:
    """The row order of ``epoch`` (of ``process``'s own rows, when it has some)."""
    key = [seed, epoch] if process is None else [seed, epoch, process]
    return np.random.default_rng(key).permutation(rows)


class SeededBatches(keras.utils.PyDataset):
    """Batches of epoch ``self.epoch`` (set by :meth:`callback`), placed.

    The epoch is set from outside, not counted here: Keras also calls
    ``on_epoch_begin``/``on_epoch_end`` around a peek at the first batch.
    Subclasses say how many batches an epoch has and what batch ``index`` holds
    (:meth:`batch`: ``(x, y)``, or ``(x, y, mask)`` already padded).
    """

    def __init__(
        self,
        batch_size: int,
        seed: int,
        key: str | None = None,
        pad_to: int = 1,
        process: int = 0,
        processes: int = 1,
    ) -> None:
        super().__init__()
        self.batch_size, self.seed, self.key, self.epoch = batch_size, seed, key, 0
        self.pad_to, self.process, self.processes = pad_to, process, processes

    @property
    def placed(self) -> bool:
        """Whether batches come padded or sliced (``(x, y, mask)``)."""
        return self.pad_to > 1 or self.processes > 1

    def batch(self, index: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        made = self.batch(index)
        if len(made) == 2 and self.placed:
            made = pad_batch(made[0], np.asarray(made[1]), self.pad_to)
        if len(made) == 3 and self.processes > 1 and self.pad_to > 1:
            x, y, mask = made
            size = len(y) // self.processes
            mine = slice(self.process * size, (self.process + 1) * size)
            made = (np.asarray(x)[mine], np.asarray(y)[mine], mask[mine])
        x, *rest = made
        return ({self.key: x} if self.key else x), *rest

    def callback(self) -> keras.callbacks.Callback:
        """A callback that tells this dataset which epoch ``fit`` is in."""
        return SetEpoch(self)


class EpochBatches(SeededBatches):
    """``batch_size`` rows of ``x``/``y`` at a time, in epoch ``e``'s order.

    Each epoch permutes the table once (one ``take``) and batches are slices of
    that copy. With ``own`` (a process of a group training on its own rows:
    :mod:`fraudkeras.training.shards`) the order is
    ``default_rng([seed, e, own]).permutation`` and an epoch has ``steps``
    batches of exactly ``batch_size`` rows with a mask: past the end of the rows
    (the last batch, or every batch of a shard shorter than another process's)
    rows are padded with copies of the first, masked 0.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        key: str | None = None,
        *,
        own: int | None = None,
        steps: int | None = None,
        pad_to: int = 1,
        process: int = 0,
        processes: int = 1,
    ) -> None:
        super().__init__(batch_size, seed, key, pad_to, process, processes)
        self.x, self.y = np.asarray(x), np.asarray(y)
        if own is not None and len(self.y) == 0:
            raise ValueError("a process's shard has no training rows")
        self.own, self.steps = own, steps
        self._arrays: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.steps if self.steps is not None else math.ceil(len(self.y) / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        return epoch_order(self.seed, epoch, len(self.y), self.own)

    def batch(self, index: int) -> tuple[Any, ...]:
        if self._arrays is None or self._arrays[0] != self.epoch:
            order = self.order(self.epoch)
            self._arrays = (self.epoch, order, self.x[order], self.y[order])
        _, order, xs, ys = self._arrays
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.own is None:
            return xs[rows], ys[rows]
        real = len(ys[rows])
        mask = np.zeros(self.batch_size, np.float32)
        mask[:real] = 1.0
        extra = np.arange(self.batch_size - real) % len(ys)  # copies of the first rows
        return (
            np.concatenate([xs[rows], xs[extra]]),
            np.concatenate([ys[rows], ys[extra]]),
            mask,
        )


class SetEpoch(keras.callbacks.Callback):
    """Tells a dataset with an ``epoch`` attribute which epoch ``fit`` is in."""

    def __init__(self, batches: Any) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.epoch = epoch


def pad_batch(x: Any, y: np.ndarray, multiple: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(x, y, mask)`` with rows appended up to a multiple of ``multiple``: copies of
    the batch's first rows (real values, so every loss term stays finite), with
    ``mask`` 0 for them and 1 for the batch's own rows. ``x``: an array or
    ``{key: rows}``."""
    rows = len(y)
    extra = -rows % multiple
    mask = np.ones(rows + extra, dtype=np.float32)
    if not extra:
        return x, y, mask
    mask[rows:] = 0.0
    repeat = np.arange(extra) % rows

    def padded(array: Any) -> np.ndarray:
        array = np.asarray(array)
        return np.concatenate([array, array[repeat]])

    features = {k: padded(v) for k, v in x.items()} if isinstance(x, dict) else padded(x)
    return features, padded(y), mask
