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
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from fraudkeras.backends.base import Backend, ModelFunction, record, share_weights, unpack


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
