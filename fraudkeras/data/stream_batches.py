"""Training batches streamed from a :class:`~fraudkeras.data.streaming.ParquetTable`.

Epoch ``e``'s order is a pure function of ``(seed, e)``: ``default_rng([seed, e])``
permutes the chunks, then the training rows of :data:`BUFFER_CHUNKS` consecutive
chunks (of that order) at a time fill a shuffle buffer, which the same generator
permutes; batches are cut from the buffer, and the rows left over (fewer than a
batch) start the next buffer. Every training row is seen exactly once per epoch,
memory is bounded by the buffer (``BUFFER_CHUNKS x CHUNK_ROWS`` rows), and a
resumed run replays the order exactly.

A ``keras.utils.PyDataset`` is random-access, but ``fit`` reads it in order: an
out-of-order index (Keras peeks at batch 0 before the epoch) restarts the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from fraudkeras.data.batches import SetEpoch, _native
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.data.streaming import TRAIN, StreamSplit

BUFFER_CHUNKS = 4


def epoch_batches(
    streamed: StreamSplit, batch_size: int, seed: int, epoch: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Epoch ``epoch``'s training batches, in order."""
    table, assignment = streamed.scan.table, streamed.scan.assignment
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(table.chunks))
    carry_x = np.zeros((0, N_FEATURES), np.float32)
    carry_y = np.zeros(0, np.int32)
    for group in range(0, len(order), BUFFER_CHUNKS):
        xs, ys = [carry_x], [carry_y]
        for index in order[group : group + BUFFER_CHUNKS]:
            chunk = table.chunks[int(index)]
            x, y = table.read(chunk)
            positions = np.arange(chunk.start, chunk.start + chunk.rows)
            keep = assignment.parts(positions, x[:, 0]) == TRAIN
            xs.append(x[keep].astype(np.float32))
            ys.append(y[keep])
        buffer_x, buffer_y = np.concatenate(xs), np.concatenate(ys)
        shuffle = rng.permutation(len(buffer_y))
        buffer_x, buffer_y = buffer_x[shuffle], buffer_y[shuffle]
        last = group + BUFFER_CHUNKS >= len(order)
        whole = len(buffer_y) if last else len(buffer_y) // batch_size * batch_size
        for start in range(0, whole, batch_size):
            end = min(start + batch_size, whole)
            yield buffer_x[start:end], buffer_y[start:end]
        carry_x, carry_y = buffer_x[whole:], buffer_y[whole:]


class StreamBatches(keras.utils.PyDataset):
    """``(x, y)`` training batches of epoch ``self.epoch`` (set by :meth:`callback`)."""

    def __init__(self, streamed: StreamSplit, batch_size: int, seed: int, epoch: int = 0) -> None:
        super().__init__()
        self.streamed, self.batch_size, self.seed, self.epoch = streamed, batch_size, seed, epoch
        self._stream: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
        self._at: tuple[int, int] = (-1, -1)  # (epoch, next index) of ``_stream``

    def __len__(self) -> int:
        return math.ceil(self.streamed.n_train / self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self._stream is None or self._at != (self.epoch, index):
            self._stream = epoch_batches(self.streamed, self.batch_size, self.seed, self.epoch)
            for _ in range(index):
                next(self._stream)
        x, y = next(self._stream)
        self._at = (self.epoch, index + 1)
        return _native(x), _native(y)

    def callback(self) -> keras.callbacks.Callback:
        return SetEpoch(self)
