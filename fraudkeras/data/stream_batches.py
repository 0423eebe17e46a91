"""Training batches streamed from a :class:`~fraudkeras.data.streaming.ParquetTable`.

Epoch ``e``'s order is a pure function of ``(seed, e)``: ``default_rng([seed, e])``
permutes the chunks (runs of whole row groups, :func:`~fraudkeras.data.streaming.open_table`),
then the training rows of consecutive chunks (of that order) holding at least
``buffer_rows`` table rows (:data:`BUFFER_ROWS`) fill a shuffle buffer, which the
same generator permutes; batches are cut from the buffer, and the rows left over
(fewer than a batch) start the next buffer. Every training row is seen exactly
once per epoch, memory is bounded by the buffer (``BUFFER_ROWS`` plus one chunk),
and a resumed run replays the order exactly.

With ``prepare`` (:meth:`~fraudkeras.modeling.model.FraudMLP.numpy_preparer`), each
buffer's rows are transformed and scaled once, in NumPy, and the batches are
prepared rows (fit wraps them as ``{PREPARED: rows}``), so a streamed step is the
in-memory path's step. ``read_ahead`` > 0 reads and splits that many chunks in a
background thread while the current buffer is trained on (polars releases the
GIL while it decodes); the order does not depend on it. It is off by default
(:data:`READ_AHEAD`): on the shared 2-core benchmark machine no gain was
measured in real runs, and each chunk in flight holds another chunk's rows
(TensorFlow's 10x peak RSS was ~1,360 MB with 2, ~1,330 MB without).

A ``keras.utils.PyDataset`` is random-access, but ``fit`` reads it in order: an
out-of-order index (Keras peeks at batch 0 before the epoch) restarts the epoch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import keras
import numpy as np

from fraudkeras.data.batches import SetEpoch, _native
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.data.streaming import CHUNK_ROWS, TRAIN, Chunk, StreamSplit

#: table rows per shuffle buffer (at least; a buffer is whole chunks)
BUFFER_ROWS = 4 * CHUNK_ROWS
#: chunks read ahead in a background thread (off: see the module docstring)
READ_AHEAD = 0

Prepare = Callable[[np.ndarray], np.ndarray]
Batches = Generator[tuple[np.ndarray, np.ndarray], None, None]


def _train_part(streamed: StreamSplit, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    table, assignment = streamed.scan.table, streamed.scan.assignment
    x, y = table.read(chunk)
    positions = np.arange(chunk.start, chunk.start + chunk.rows)
    keep = assignment.parts(positions, x[:, 0]) == TRAIN
    return x[keep].astype(np.float32), y[keep]


def _chunks_read(streamed: StreamSplit, order: np.ndarray, read_ahead: int) -> Batches:
    """The training rows of ``order``'s chunks, in order, ``read_ahead`` read ahead."""
    chunks = [streamed.scan.table.chunks[int(index)] for index in order]
    if read_ahead <= 0:
        for chunk in chunks:
            yield _train_part(streamed, chunk)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="fraudkeras-read") as pool:
        pending: deque[Future[tuple[np.ndarray, np.ndarray]]] = deque()
        upcoming = iter(chunks)
        try:
            for chunk in upcoming:
                pending.append(pool.submit(_train_part, streamed, chunk))
                if len(pending) > read_ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # an abandoned epoch: drop what was not started
            for future in pending:
                future.cancel()


def epoch_batches(
    streamed: StreamSplit,
    batch_size: int,
    seed: int,
    epoch: int,
    prepare: Prepare | None = None,
    buffer_rows: int = BUFFER_ROWS,
    read_ahead: int | None = None,
) -> Batches:
    """Epoch ``epoch``'s training batches, in order (prepared rows with ``prepare``;
    ``read_ahead`` chunks read in the background, :data:`READ_AHEAD` if None)."""
    table = streamed.scan.table
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(table.chunks))
    sizes = np.array([table.chunks[int(index)].rows for index in order])
    groups, at = [], 0  # [start, end) of order: whole chunks, >= buffer_rows table rows
    while at < len(order):
        end = at + 1 + int(np.searchsorted(np.cumsum(sizes[at:]), buffer_rows))
        groups.append((at, min(end, len(order))))
        at = groups[-1][1]
    width = N_FEATURES if prepare is None else None
    carry_x: np.ndarray | None = None
    carry_y = np.zeros(0, np.int32)
    read = _chunks_read(streamed, order, READ_AHEAD if read_ahead is None else read_ahead)
    try:
        for number, (first, last_chunk) in enumerate(groups):
            pieces = [next(read) for _ in range(first, last_chunk)]
            x = np.concatenate([p[0] for p in pieces])
            y = np.concatenate([p[1] for p in pieces])
            del pieces
            if prepare is not None:
                x = prepare(x)
            if carry_x is None:
                carry_x = np.zeros((0, width or x.shape[1]), x.dtype)
            buffer_x, buffer_y = np.concatenate([carry_x, x]), np.concatenate([carry_y, y])
            del x, y
            shuffle = rng.permutation(len(buffer_y))
            buffer_x, buffer_y = buffer_x[shuffle], buffer_y[shuffle]
            last = number == len(groups) - 1
            whole = len(buffer_y) if last else len(buffer_y) // batch_size * batch_size
            for start in range(0, whole, batch_size):
                end = min(start + batch_size, whole)
                yield buffer_x[start:end], buffer_y[start:end]
            carry_x, carry_y = buffer_x[whole:], buffer_y[whole:]
    finally:
        read.close()


class StreamBatches(keras.utils.PyDataset):
    """``(x, y)`` training batches of epoch ``self.epoch`` (set by :meth:`callback`);
    with ``prepare``, ``x`` is ``{key: prepared rows}``."""

    def __init__(
        self,
        streamed: StreamSplit,
        batch_size: int,
        seed: int,
        epoch: int = 0,
        prepare: Prepare | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self.streamed, self.batch_size, self.seed, self.epoch = streamed, batch_size, seed, epoch
        self.prepare, self.key = prepare, key
        self._stream: Batches | None = None
        self._at: tuple[int, int] = (-1, -1)  # (epoch, next index) of ``_stream``

    def __len__(self) -> int:
        return math.ceil(self.streamed.n_train / self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self._stream is None or self._at != (self.epoch, index):
            if self._stream is not None:
                self._stream.close()
            self._stream = epoch_batches(
                self.streamed, self.batch_size, self.seed, self.epoch, self.prepare
            )
            for _ in range(index):
                next(self._stream)
        x, y = next(self._stream)
        self._at = (self.epoch, index + 1)
        features = _native(x)
        return ({self.key: features} if self.key else features), _native(y)

    def callback(self) -> keras.callbacks.Callback:
        return SetEpoch(self)
