"""TensorFlow: gradients with ``tf.GradientTape``, stateful metric updates.

Under a ``tf.distribute`` strategy with several replicas (``fraudkeras train
--devices N``, :mod:`fraudkeras.training.parallel`) each replica runs these steps
on its slice of the global batch, and the optimizer sums the replicas'
gradients. Our loss is a plain function, not a ``keras.losses.Loss`` (which
Keras would scale), so a replica's loss is the *sum* of its rows' weighted BCE
over the global batch's row count (all-reduced): the replicas' losses then add
up to the one-device mean exactly, for an uneven last batch too (the replicas'
slices differ in size, one may even be empty).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from fraudkeras.modeling.train_steps.stateful import update_metrics

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


#: model -> {(key, width): tf.function of a batch}
_COMPILED: weakref.WeakKeyDictionary[FraudMLP, dict[tuple[str, int], Any]] = (
    weakref.WeakKeyDictionary()
)


def compiled(
    model: FraudMLP, key: str, function: Callable[[FraudMLP, Any], Any]
) -> Callable[[Any], Any]:
    """``function(model, batch)`` as a ``tf.function`` of float32 batches with any
    number of rows, traced once per model, key and width: eagerly, the validation
    pass over 42,721 prepared rows took ~26 ms in Python dispatch. ``tf.function``
    reads the variables when it runs, so later weights are never stale; the model
    is held weakly."""
    functions = _COMPILED.setdefault(model, {})
    owner = weakref.ref(model)

    def run(batch: Any) -> Any:
        width = int(batch.shape[-1])
        if (key, width) not in functions:
            rows = tf.TensorSpec([None, width], tf.float32)
            functions[key, width] = tf.function(
                lambda rows: function(owner(), rows),  # type: ignore[arg-type]
                input_signature=[rows],
            )
        return functions[key, width](batch)

    return run


def fit_context(model: FraudMLP) -> contextlib.AbstractContextManager[None]:
    """``fit`` runs as Keras sets it up (threads: the framework's default)."""
    return contextlib.nullcontext()


def _replicas() -> Any:
    """The replica context when several replicas train in sync, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def train_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, mask = keras.utils.unpack_x_y_sample_weight(data)
    replicas = _replicas()
    if replicas is None:
        with tf.GradientTape() as tape:
            logits = model(x, training=True, return_logits=True)
            loss = model.weighted_loss(y, logits)
        rows = None
    else:  # a mask (several workers) marks padding rows 0
        weight = None if mask is None else tf.reshape(tf.cast(mask, tf.float32), [-1])
        local_rows = (
            tf.cast(tf.shape(y)[0], tf.float32) if weight is None else tf.reduce_sum(weight)
        )
        global_rows = replicas.all_reduce(tf.distribute.ReduceOp.SUM, local_rows)
        with tf.GradientTape() as tape:
            logits = model(x, training=True, return_logits=True)
            rows = model.row_losses(y, logits)
            if weight is not None:
                rows = rows * tf.cast(weight, rows.dtype)
            loss = tf.reduce_sum(rows) / tf.cast(global_rows, rows.dtype)
    gradients = tape.gradient(loss, model.trainable_variables)
    model.optimizer.apply(gradients, model.trainable_variables)
    logs = update_metrics(model, model.train_metrics, loss, y, logits, rows, mask)
    if replicas is not None:
        logs["loss"] = _global_mean(replicas, model.loss_tracker)
    if _several_workers():  # Keras reduces these logs with axis=0 (see tf_group)
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def _several_workers() -> bool:
    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._num_workers > 1
    )


def _global_mean(replicas: Any, tracker: keras.metrics.Mean) -> Any:
    """The tracker's mean over every replica's rows. Keras replaces the test step's
    logs by the metrics' (cross-replica) results, but keeps the train step's, which
    it averages over the replicas: a mean of means, unequal when the slices are.
    One stacked tensor: under ``MultiWorkerMirroredStrategy`` a list of the
    variables' values fails to trace ("destinations can not be empty")."""
    local = tf.stack([tf.identity(tracker.total), tf.cast(tracker.count, tracker.total.dtype)])
    total, count = tf.unstack(replicas.all_reduce(tf.distribute.ReduceOp.SUM, local))
    return tf.math.divide_no_nan(total, count)


def test_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    logits = model(x, training=False, return_logits=True)
    rows = None if _replicas() is None else model.row_losses(y, logits)
    return update_metrics(model, model.metrics, model.weighted_loss(y, logits), y, logits, rows)
