"""TensorFlow: gradients with ``tf.GradientTape``, updates with
``model.optimizer.apply``, stateful metrics.

Under a ``tf.distribute`` strategy with several replicas (``--devices N`` on one
host, or the workers of ``TF_CONFIG``), each replica runs the step on its slice
of the global batch and the optimizer sums the replicas' gradients. Keras
divides a replica's loss by the replica count, which is one device's mean only
when the slices are equal; the step instead weighs rows so that a replica's
loss is its rows' share of the global batch's mean
(:func:`fraudkeras.backends.base.share_weights`, the real rows all-reduced):
exact for an uneven last batch, an empty slice or padded rows (a 0/1 mask).

Several devices of one host: ``tf.distribute.MirroredStrategy`` over N GPUs,
else N logical CPU devices, one step per compiled call (Keras 3.15's multi-step
loop fails under it: "You must feed a value for placeholder tensor",
keras-team/keras#19246). Several processes: the ``MultiWorkerMirroredStrategy``
of ``TF_CONFIG`` (a cluster of at least two workers; worker 0 writes), one
replica per worker, each feeding its own part of every global batch through
``distribute_datasets_from_function``; Keras reduces a multi-worker step's logs
with ``reduce("MEAN", axis=0)``, which fails for scalars (keras-team/keras#20585),
so the step returns each log as a one-element vector there.

Batches reach ``fit`` as ``tf.data`` pipelines (:meth:`TensorflowBackend.feed`):
through Keras's ``PyDataset`` adapter every batch is a Python call
(``from_generator``); here Python runs once per epoch (rows in memory: the
epoch's order, gathered and sliced in ``tf.data``) or once per shuffle buffer
(streamed rows).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fraudkeras._core.devices import check_device_count, split_tensorflow_cpu
from fraudkeras._core.errors import ParameterError
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.backends.base import (
    Backend,
    Group,
    ModelFunction,
    Placement,
    record,
    share_weights,
    unpack,
)
from fraudkeras.data.batches import EpochBatches, SeededBatches
from fraudkeras.data.stream_batches import StreamBatches


class TensorflowBackend(Backend):
    name = "tensorflow"

    def __init__(self) -> None:
        #: model -> {(key, width): tf.function of a batch}
        self._compiled: weakref.WeakKeyDictionary[keras.Model, dict[tuple[str, int], Any]] = (
            weakref.WeakKeyDictionary()
        )

    def train_step(self, model: keras.Model, *args: Any) -> Any:
        (data,) = args
        x, y, sample_weight = unpack(data)
        replicas = _replicas()
        weights, rows, local = _weights(replicas, y, sample_weight)
        with tf.GradientTape() as tape:
            logits = model(x, training=True, return_logits=True)
            loss = model.compute_loss(x, y, logits, weights, training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(gradients, model.trainable_variables)
        return _logs(model, replicas, loss, rows, local, y, logits, sample_weight, True)

    def test_step(self, model: keras.Model, *args: Any) -> Any:
        (data,) = args
        x, y, sample_weight = unpack(data)
        replicas = _replicas()
        weights, rows, local = _weights(replicas, y, sample_weight)
        logits = model(x, training=False, return_logits=True)
        loss = model.compute_loss(x, y, logits, weights, training=False)
        return _logs(model, replicas, loss, rows, local, y, logits, sample_weight, False)

    def compiled(
        self, model: keras.Model, key: str, function: ModelFunction
    ) -> Callable[[Any], Any]:
        """A ``tf.function`` of float32 batches with any number of rows, traced once
        per model, key and width: eagerly, the validation pass over 42,721 prepared
        rows took ~26 ms in Python dispatch. It reads the variables when it runs,
        so later weights are never stale; the model is held weakly."""
        functions = self._compiled.setdefault(model, {})
        owner = weakref.ref(model)

        def run(batch: Any) -> Any:
            width = int(batch.shape[-1])
            if (key, width) not in functions:
                rows = tf.TensorSpec([None, width], tf.float32)
                functions[key, width] = tf.function(
                    lambda rows: function(owner(), rows), input_signature=[rows]
                )
            return functions[key, width](batch)

        return run

    def input_gradients(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            logits = model(inputs, return_logits=True)
        return np.asarray(tape.gradient(logits, inputs))  # rows are independent: sum = per row

    def steps_per_execution(self, wanted: int) -> int:
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            return 1  # keras-team/keras#19246, see the module docstring
        return super().steps_per_execution(wanted)

    # -- feeding fit -----------------------------------------------------------------

    def feed(self, batches: SeededBatches) -> Any:
        if self._group is not None:
            return _worker_dataset(self._strategy, batches)
        if isinstance(batches, EpochBatches) and not batches.placed and batches.own is None:
            return _memory_pipeline(batches)
        if isinstance(batches, StreamBatches) and not batches.placed:
            return _stream_pipeline(batches)
        return batches

    # -- devices and process groups --------------------------------------------------

    _group: Group | None = None
    _strategy: Any = None

    def join_group(self) -> Group | None:
        workers = environment_workers()
        if workers is None:
            return None
        if self._group is None:
            index, count = workers
            with c_output_silenced():  # its gRPC server and coordination service log lines
                strategy = tf.distribute.MultiWorkerMirroredStrategy()
            if strategy.num_replicas_in_sync != count:  # a worker with several GPUs
                raise ParameterError(
                    f"TF_CONFIG: {count} workers make {strategy.num_replicas_in_sync} "
                    "replicas; one device per worker is supported (set "
                    "CUDA_VISIBLE_DEVICES to one GPU)"
                )
            self._strategy, self._group = strategy, Group(index, count, 1, count)
        return self._group

    def group(self) -> Group | None:
        return self._group

    def largest(self, value: int) -> int:
        """A SUM all-reduce of one-hot vectors: the strategy reduces by SUM or MEAN."""
        group = self._group
        if group is None:
            return value
        mine = np.zeros(group.processes, np.int64)
        mine[group.process] = value
        strategy = self._strategy

        @tf.function  # the strategy warns when run eagerly
        def gather() -> Any:
            values = strategy.run(lambda: tf.constant(mine))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

        return int(np.max(gather().numpy()))

    def check_devices(self, devices: int) -> None:
        check_device_count(devices)
        if devices == 1 or self._group is not None:
            return
        split_tensorflow_cpu(devices)
        found = len(_devices(devices))
        if found < devices:
            raise ParameterError(
                f"devices {devices}: TensorFlow has {found} device(s), and its CPU can only "
                "be split before TensorFlow runs anything; call "
                f"fraudkeras._core.devices.prepare_devices('tensorflow', {devices}) first "
                "(fraudkeras train --devices does it itself)"
            )

    @contextlib.contextmanager
    def data_parallel(self, devices: int) -> Iterator[Placement]:
        group = self._group
        if group is not None:  # one replica per worker; each feeds its part of a batch
            with self._strategy.scope():
                yield Placement(group.devices, group.devices, group.processes, group.process)
            return
        self.check_devices(devices)
        if devices == 1:
            yield Placement()
            return
        with tf.distribute.MirroredStrategy(_devices(devices)).scope():
            yield Placement(devices)


def environment_workers() -> tuple[int, int] | None:
    """``(worker index, workers)`` from ``TF_CONFIG``, or None when it describes no
    group of several workers."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = list(config["cluster"]["worker"])
        task = config["task"]
        kind, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ParameterError(f"TF_CONFIG is not a worker cluster: {error!r}") from None
    if set(config["cluster"]) != {"worker"} or kind != "worker":
        raise ParameterError("TF_CONFIG: only a cluster of workers is supported (no chief or ps)")
    if not 0 <= index < len(workers):
        raise ParameterError(f"TF_CONFIG: worker {index} is not in a cluster of {len(workers)}")
    return (index, len(workers)) if len(workers) > 1 else None


def _devices(devices: int) -> list[str]:
    gpus = tf.config.list_logical_devices("GPU")
    chosen = gpus if len(gpus) >= devices else tf.config.list_logical_devices("CPU")
    return [device.name for device in chosen[:devices]]


def _inputs(key: str | None, rows: Any) -> Any:
    return {key: rows} if key else rows


def _memory_pipeline(batches: EpochBatches) -> Any:
    """One epoch of ``batches`` (the epoch it is in when the pipeline starts):
    Python draws the order; gathering and slicing run in ``tf.data``, ahead of the
    step. One epoch, not an endless pipeline with ``steps_per_epoch``: Keras's
    loop runs whole ``steps_per_execution`` chunks while data lasts, so an endless
    pipeline took the surplus of the last chunk from the next epoch's order."""
    rows, size, key = len(batches.y), batches.batch_size, batches.key
    features, labels = tf.constant(batches.x), tf.constant(batches.y)

    def order() -> Iterator[np.ndarray]:
        yield batches.order(batches.epoch)

    def cut(order: Any) -> Any:
        xs, ys = tf.gather(features, order), tf.gather(labels, order)
        starts = tf.data.Dataset.range(0, rows, size)
        return starts.map(lambda s: (_inputs(key, xs[s : s + size]), ys[s : s + size]))

    spec = tf.TensorSpec((rows,), tf.int64)
    dataset = tf.data.Dataset.from_generator(order, output_signature=spec).flat_map(cut)
    steps = tf.data.experimental.assert_cardinality(math.ceil(rows / size))
    return dataset.apply(steps).prefetch(tf.data.AUTOTUNE)


def _stream_pipeline(batches: StreamBatches) -> Any:
    """Streamed batches as whole shuffle buffers from Python, cut in ``tf.data``:
    through the ``PyDataset`` adapter each of a 10x epoch's 7,788 batches took a
    Python call and a conversion (5.0 s against 3.3 s in memory)."""
    size, key = batches.batch_size, batches.key

    def cut(x: Any, y: Any) -> Any:
        starts = tf.data.Dataset.range(0, tf.cast(tf.shape(y)[0], tf.int64), size)
        return starts.map(lambda s: (_inputs(key, x[s : s + size]), y[s : s + size]))

    spec = (tf.TensorSpec([None, batches.width], tf.float32), tf.TensorSpec([None], tf.int32))
    dataset = tf.data.Dataset.from_generator(batches.buffers, output_signature=spec)
    steps = tf.data.experimental.assert_cardinality(len(batches))
    return dataset.flat_map(cut).apply(steps).prefetch(tf.data.AUTOTUNE)


def _worker_dataset(strategy: Any, batches: SeededBatches) -> Any:
    """``batches`` (``(x, y, mask)`` local batches, ``x`` a dict of float32 rows)
    as each worker's own input pipeline: a distributed dataset that ``fit`` takes
    as it is. Each epoch re-reads ``batches`` in order."""
    x, y, _ = batches[0]
    spec = (
        {key: tf.TensorSpec([None, value.shape[1]], tf.float32) for key, value in x.items()},
        tf.TensorSpec([None], tf.as_dtype(np.asarray(y).dtype)),
        tf.TensorSpec([None], tf.float32),
    )

    def generate() -> Any:
        for index in range(len(batches)):
            yield batches[index]

    def pipeline(context: Any) -> Any:
        dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))

    return strategy.distribute_datasets_from_function(pipeline)


def _replicas() -> Any:
    """The replica context when several replicas train in sync, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def _weights(replicas: Any, y: Any, mask: Any) -> tuple[Any, Any, Any]:
    """The step's sample weights, the global batch's real rows and this
    replica's (the sample weights as given outside a strategy)."""
    local = tf.cast(tf.shape(y)[0], tf.float32)
    if replicas is None:
        return mask, local, local
    weight = tf.ones(tf.shape(y)[:1]) if mask is None else mask
    weight = tf.reshape(tf.cast(weight, tf.float32), [-1])
    real = tf.reduce_sum(weight)
    rows = replicas.all_reduce(tf.distribute.ReduceOp.SUM, real)
    scale = float(replicas.num_replicas_in_sync)  # Keras divides each loss by it
    return share_weights(weight, local, rows, scale), rows, real


def _logs(
    model: keras.Model,
    replicas: Any,
    loss: Any,
    rows: Any,
    local: Any,
    y: Any,
    logits: Any,
    sample_weight: Any,
    training: bool,
) -> dict[str, Any]:
    if replicas is None:
        return record(model, loss, rows, y, logits, sample_weight, training)
    # this replica's rows' mean loss, weighted by their count: the tracker's
    # replicas then add up to the global batch's mean
    mean = tf.math.divide_no_nan(loss * tf.cast(rows, loss.dtype), tf.cast(local, loss.dtype))
    logs = record(model, mean, local, y, logits, sample_weight, training)
    logs["loss"] = _global_mean(replicas, model.loss_tracker)
    if _several_workers():  # Keras reduces these logs with axis=0 (keras-team/keras#20585)
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def _several_workers() -> bool:
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return int(strategy.cluster_resolver.cluster_spec().num_tasks("worker")) > 1


def _global_mean(replicas: Any, tracker: keras.metrics.Metric) -> Any:
    """The tracker's mean over every replica's rows. Keras replaces the test step's
    logs by the metrics' (cross-replica) results, but keeps the train step's, which
    it averages over the replicas: a mean of means, unequal when the slices are.
    One stacked tensor: under ``MultiWorkerMirroredStrategy`` a list of the
    variables' values fails to trace ("destinations can not be empty")."""
    total, count = tracker.variables
    local = tf.stack([tf.identity(total), tf.cast(count, total.dtype)])
    total, count = tf.unstack(replicas.all_reduce(tf.distribute.ReduceOp.SUM, local))
    return tf.math.divide_no_nan(total, count)


BACKEND = TensorflowBackend()
