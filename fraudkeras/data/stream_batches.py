"""Training batches streamed from a :class:`~fraudkeras.data.parquet_table.ParquetTable`.

Epoch ``e``'s order is a pure function of ``(seed, e)``: ``default_rng([seed, e])``
permutes the chunks (runs of whole row groups, :func:`~fraudkeras.data.parquet_table.open_table`),
then the training rows of consecutive chunks (of that order) holding at least
``buffer_rows`` table rows (:data:`BUFFER_ROWS`) fill a shuffle buffer, which the
same generator permutes; batches are cut from the buffer, and the rows left over
(fewer than a batch) start the next buffer. Every training row is seen exactly
once per epoch, memory is bounded by the buffer (``BUFFER_ROWS`` plus one chunk),
and a resumed run replays the order exactly.

With ``prepare`` (:meth:`~fraudkeras.modeling.model.FraudMLP.numpy_preparer`), each
buffer's rows are transformed and scaled once, in NumPy, and the batches are
prepared rows (fit wraps them as ``{PREPARED: rows}``), so a streamed step is the
in-memory path's step. The next buffer is read, split, prepared and permuted
in a background thread (:data:`BUFFERS_AHEAD`) while the current one is trained
on: polars and NumPy release the GIL, so on a 10x epoch that work (~1.9 s of
~5 s, mostly Parquet decoding) runs beside training instead of between its
steps; the order does not depend on it. It holds up to two more buffers than
the one being trained on: one waiting in the queue and the next one built.

A ``keras.utils.PyDataset`` is random-access, but ``fit`` reads it in order: an
out-of-order index (Keras peeks at batch 0 before the epoch) restarts the epoch.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Generator
from queue import Empty, Full, Queue
from typing import Any

import numpy as np

from fraudkeras.data.batches import SeededBatches
from fraudkeras.data.parquet_table import CHUNK_ROWS
from fraudkeras.data.streaming import StreamSplit

#: table rows per shuffle buffer (at least; a buffer is whole chunks)
BUFFER_ROWS = 4 * CHUNK_ROWS
#: shuffle buffers made ahead in a background thread (see the module docstring)
BUFFERS_AHEAD = 1

Prepare = Callable[[np.ndarray], np.ndarray]
Batches = Generator[tuple[np.ndarray, np.ndarray], None, None]


def _buffers(
    streamed: StreamSplit,
    batch_size: int,
    rng: np.random.Generator,
    groups: list[list[int]],
    prepare: Prepare | None,
) -> Batches:
    """The epoch's shuffle buffers, each a whole number of batches but the last:
    the training rows of a group of chunks plus the previous buffer's leftover,
    prepared, permuted."""
    carry_x: np.ndarray | None = None
    carry_y = np.zeros(0, np.int32)
    for number, group in enumerate(groups):
        pieces = [streamed.train_part(streamed.scan.table.chunks[index]) for index in group]
        x = np.concatenate([p[0] for p in pieces])
        y = np.concatenate([p[1] for p in pieces])
        del pieces
        if prepare is not None:
            x = prepare(x)
        if carry_x is None:
            carry_x = np.zeros((0, x.shape[1]), x.dtype)
        buffer_x, buffer_y = np.concatenate([carry_x, x]), np.concatenate([carry_y, y])
        del x, y
        shuffle = rng.permutation(len(buffer_y))
        buffer_x, buffer_y = buffer_x[shuffle], buffer_y[shuffle]
        last = number == len(groups) - 1
        whole = len(buffer_y) if last else len(buffer_y) // batch_size * batch_size
        carry_x, carry_y = buffer_x[whole:], buffer_y[whole:]
        yield buffer_x[:whole], buffer_y[:whole]


def _ahead(source: Batches, depth: int) -> Batches:
    """``source``'s items, produced ``depth`` ahead in a background thread (so
    reading and preparing the next buffer overlaps training on this one: polars
    and NumPy release the GIL); its errors are raised here, in order."""
    if depth <= 0:
        yield from source
        return
    queue: Queue[tuple[Any, Any] | BaseException | None] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(None)
        except BaseException as error:  # handed to the consumer, raised there
            queue.put(error)
        finally:
            source.close()

    producer = threading.Thread(target=produce, name="fraudkeras-buffers", daemon=True)
    producer.start()
    try:
        while (item := queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # an abandoned epoch: stop the producer, free what it holds
        stop.set()
        while producer.is_alive():
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        producer.join()


def epoch_buffers(
    streamed: StreamSplit,
    batch_size: int,
    seed: int,
    epoch: int,
    prepare: Prepare | None = None,
    buffer_rows: int = BUFFER_ROWS,
    ahead: int | None = None,
) -> Batches:
    """Epoch ``epoch``'s shuffle buffers, in order, each a whole number of batches
    but the last (prepared rows with ``prepare``; ``ahead`` buffers made in the
    background, :data:`BUFFERS_AHEAD` if None)."""
    table = streamed.scan.table
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(table.chunks))
    sizes = np.array([table.chunks[int(index)].rows for index in order])
    groups, at = [], 0  # whole chunks of ``order``, >= buffer_rows table rows each
    while at < len(order):
        end = min(len(order), at + 1 + int(np.searchsorted(np.cumsum(sizes[at:]), buffer_rows)))
        groups.append([int(index) for index in order[at:end]])
        at = end
    buffers = _buffers(streamed, batch_size, rng, groups, prepare)
    return _ahead(buffers, BUFFERS_AHEAD if ahead is None else ahead)


def epoch_batches(
    streamed: StreamSplit,
    batch_size: int,
    seed: int,
    epoch: int,
    prepare: Prepare | None = None,
    buffer_rows: int = BUFFER_ROWS,
    ahead: int | None = None,
) -> Batches:
    """Epoch ``epoch``'s training batches, in order: :func:`epoch_buffers` cut
    into ``batch_size`` rows."""
    made = epoch_buffers(streamed, batch_size, seed, epoch, prepare, buffer_rows, ahead)
    try:
        for buffer_x, buffer_y in made:
            for start in range(0, len(buffer_y), batch_size):
                yield buffer_x[start : start + batch_size], buffer_y[start : start + batch_size]
    finally:
        made.close()


class StreamBatches(SeededBatches):
    """``(x, y)`` training batches of epoch ``self.epoch`` streamed from the table
    (with ``prepare``, prepared rows); :meth:`buffers` gives the same rows as whole
    shuffle buffers, for a backend that cuts batches itself (``tf.data``)."""

    def __init__(
        self,
        streamed: StreamSplit,
        batch_size: int,
        seed: int,
        prepare: Prepare | None = None,
        key: str | None = None,
        *,
        pad_to: int = 1,
        process: int = 0,
        processes: int = 1,
    ) -> None:
        super().__init__(batch_size, seed, key, pad_to, process, processes)
        self.streamed, self.prepare = streamed, prepare
        self._stream: Batches | None = None
        self._at: tuple[int, int] = (-1, -1)  # (epoch, next index) of ``_stream``

    def __len__(self) -> int:
        return math.ceil(self.streamed.n_train / self.batch_size)

    @property
    def width(self) -> int | None:
        """The rows' width when known before reading (raw rows), else None."""
        return int(self.streamed.split.train.x.shape[1]) if self.prepare is None else None

    def batch(self, index: int) -> tuple[Any, ...]:
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
        return x, y

    def buffers(self) -> Batches:
        """The current epoch's shuffle buffers (:func:`epoch_buffers`)."""
        made = epoch_buffers(self.streamed, self.batch_size, self.seed, self.epoch, self.prepare)
        try:
            yield from made
        finally:
            made.close()
