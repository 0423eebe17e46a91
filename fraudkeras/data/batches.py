"""The training data path into ``fit``: batches in a seeded order per epoch.

Epoch ``e``'s order is ``default_rng([seed, e]).permutation(n)``, a pure function
of ``(seed, epoch)``: Keras's own ``shuffle`` draws from each backend's global
RNG, which a resumed process could not replay. One ``fit`` over all epochs reads
a new order every epoch (``fit`` once per epoch re-created Keras's data adapter,
iterator and, on torch, a ``DataLoader`` every epoch).

JAX reads a :class:`EpochBatches` (a ``keras.utils.PyDataset``, the form
streaming input can take as well); PyTorch the same batches through
:func:`torch_loader`; TensorFlow reads :class:`TfEpochBatches`, a ``tf.data``
pipeline, because a ``PyDataset`` reaches TensorFlow's compiled loop through
``tf.data.Dataset.from_generator``, one Python call per batch. With ``key``,
each batch's features come as ``{key: rows}`` (rows prepared once for training,
see ``FraudMLP.prepare``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np


def epoch_order(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The row order of ``epoch``."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


class EpochBatches(keras.utils.PyDataset):
    """``(x, y)`` batches of ``batch_size`` rows in epoch ``self.epoch``'s order.

    The epoch is set from outside (:meth:`callback`), not counted here: Keras
    also calls ``on_epoch_begin``/``on_epoch_end`` around a peek at the first
    batch. Each epoch permutes the table once (one ``take``), and batches are
    slices of that copy: on torch, views of one tensor, as the notebook's loop.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        epoch: int = 0,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.batch_size, self.seed, self.epoch, self.key = batch_size, seed, epoch, key
        self._arrays: tuple[int, Any, Any] | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self._arrays is None or self._arrays[0] != self.epoch:
            order = epoch_order(self.seed, self.epoch, len(self.y))
            self._arrays = (self.epoch, _native(self.x[order]), _native(self.y[order]))
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        features = self._arrays[1][rows]
        return ({self.key: features} if self.key else features), self._arrays[2][rows]

    def callback(self) -> keras.callbacks.Callback:
        """A callback that tells this dataset which epoch ``fit`` is in."""
        return SetEpoch(self)


class SetEpoch(keras.callbacks.Callback):
    """Tells a dataset with an ``epoch`` attribute which epoch ``fit`` is in."""

    def __init__(self, batches: Any) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.epoch = epoch


def torch_loader(batches: EpochBatches) -> Any:
    """``batches`` as a torch ``DataLoader`` that hands them out as they are.

    Keras's torch trainer reads any input through a ``DataLoader``; for a
    ``PyDataset`` it builds one whose every batch passes a fetcher, a collate
    function and a profiler ``record_function`` (~0.2 ms a batch here, a sixth
    of a step; scripts/bench_training.py). This loader's iterator is the
    dataset's own, as the notebook's loop slices its permuted tensor.
    """
    from torch.utils.data import DataLoader, IterableDataset

    class Batches(IterableDataset):
        def __iter__(self) -> Iterator[tuple[Any, Any]]:
            return (batches[i] for i in range(len(batches)))

        def __len__(self) -> int:
            return len(batches)

    class Loader(DataLoader):
        def __iter__(self) -> Any:  # DataLoader's own iterator type, or Any without torch
            return iter(self.dataset)

    return Loader(Batches(), batch_size=None)


def _native(array: np.ndarray) -> Any:
    """Torch tensors on torch, so that batches need no conversion in ``fit``."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(array))
    return array


class TfEpochBatches:
    """The same batches as :class:`EpochBatches` as a ``tf.data`` pipeline
    (``self.dataset``) of one epoch, in the order of the epoch :meth:`callback`
    last set. Python runs once per epoch, to draw the order; gathering and
    slicing run in ``tf.data``, ahead of the step.

    One epoch, not an endless pipeline with ``steps_per_epoch``: Keras's
    TensorFlow loop runs whole ``steps_per_execution`` chunks while data lasts,
    so an endless pipeline gave 13 x 64 = 832 steps per 779-batch epoch, the
    surplus taken from the next epoch's order. A pipeline that ends stops the
    last chunk at the epoch's last batch."""

    def __init__(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, key: str | None = None
    ) -> None:
        import tensorflow as tf

        self.epoch = 0
        rows = len(y)
        features, labels = tf.constant(np.asarray(x)), tf.constant(np.asarray(y))

        def order() -> Iterator[np.ndarray]:
            yield epoch_order(seed, self.epoch, rows)

        def batches(order: Any) -> Any:
            xs, ys = tf.gather(features, order), tf.gather(labels, order)
            starts = tf.data.Dataset.range(0, rows, batch_size)
            return starts.map(lambda s: (inputs(xs[s : s + batch_size]), ys[s : s + batch_size]))

        def inputs(features: Any) -> Any:
            return {key: features} if key else features

        spec = tf.TensorSpec((rows,), tf.int64)
        dataset = tf.data.Dataset.from_generator(order, output_signature=spec).flat_map(batches)
        steps = tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size))
        self.dataset = dataset.apply(steps).prefetch(tf.data.AUTOTUNE)

    def callback(self) -> keras.callbacks.Callback:
        """A callback that tells this pipeline which epoch ``fit`` is in."""
        return SetEpoch(self)


class PaddedBatches(keras.utils.PyDataset):
    """Another dataset's ``(x, y)`` batches as ``(x, y, mask)``, padded to a
    multiple of ``multiple`` rows (:func:`pad_batch`).

    JAX's data parallelism splits a batch into equal slices, one per device, and
    cannot place an uneven one (an epoch's last batch, usually); the train steps
    weigh rows by ``mask``, so padding changes nothing but the shapes.
    """

    def __init__(self, batches: Any, multiple: int) -> None:
        super().__init__()
        self.batches, self.multiple = batches, multiple

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        x, y = self.batches[index]
        return pad_batch(x, np.asarray(y), self.multiple)

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()


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

    return _features(x, padded), padded(y), mask


def _features(x: Any, function: Any) -> Any:
    """``function`` applied to the rows of ``x``, an array or ``{key: rows}``."""
    return (
        {key: function(value) for key, value in x.items()} if isinstance(x, dict) else function(x)
    )


class ProcessSlice(keras.utils.PyDataset):
    """Process ``process``'s part of each padded global batch of ``batches``
    (``(x, y, mask)`` with a multiple of ``processes`` rows): its ``1/processes``
    of the rows, in order (JAX on several processes, where each feeds its local
    part and Keras assembles the global batch)."""

    def __init__(self, batches: Any, process: int, processes: int) -> None:
        super().__init__()
        self.batches, self.process, self.processes = batches, process, processes

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        x, y, mask = self.batches[index]
        size = len(y) // self.processes
        rows = slice(self.process * size, (self.process + 1) * size)
        return _features(x, lambda a: np.asarray(a)[rows]), np.asarray(y)[rows], mask[rows]

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()


class ShardBatches(keras.utils.PyDataset):
    """One process's local batches from its own shard of the training rows (JAX on
    several processes, each reading its own Parquet files): ``steps`` batches of
    exactly ``batch_size`` rows and a mask, in epoch ``e``'s order
    ``default_rng([seed, e, process]).permutation(rows)``. Past the end of the
    shard (the last batch, or every batch of a shard shorter than another
    process's), rows are padded with copies of its first rows, masked 0."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        process: int,
        steps: int,
        key: str | None = None,
    ) -> None:
        super().__init__()
        if len(y) == 0:
            raise ValueError("a process's shard has no training rows")
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.batch_size, self.seed, self.process, self.steps = batch_size, seed, process, steps
        self.key, self.epoch = key, 0
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.steps

    def order(self, epoch: int) -> np.ndarray:
        """The shard's row order in ``epoch``."""
        return np.random.default_rng([self.seed, epoch, self.process]).permutation(len(self.y))

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, self.order(self.epoch))
        order = self._order[1]
        rows = order[index * self.batch_size : (index + 1) * self.batch_size]
        mask = np.zeros(self.batch_size, np.float32)
        mask[: len(rows)] = 1.0
        extra = self.batch_size - len(rows)
        rows = np.concatenate([rows, order[np.arange(extra) % len(order)]])
        features = self.x[rows]
        return ({self.key: features} if self.key else features), self.y[rows], mask

    def callback(self) -> keras.callbacks.Callback:
        return SetEpoch(self)
