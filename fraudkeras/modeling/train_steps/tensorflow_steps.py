"""TensorFlow: gradients with ``tf.GradientTape``, stateful metric updates."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from fraudkeras.modeling.train_steps.stateful import update_metrics

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


def compiled(
    model: FraudMLP, key: str, function: Callable[[FraudMLP, Any], Any]
) -> Callable[[Any], Any]:
    """``function(model, batch)``, run eagerly: eager ops need no compiling here."""
    return lambda batch: function(model, batch)


def fit_context(model: FraudMLP) -> contextlib.AbstractContextManager[None]:
    """``fit`` runs as Keras sets it up (threads: the framework's default)."""
    return contextlib.nullcontext()


def train_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        logits = model(x, training=True, return_logits=True)
        loss = model.weighted_loss(y, logits)
    gradients = tape.gradient(loss, model.trainable_variables)
    model.optimizer.apply(gradients, model.trainable_variables)
    return update_metrics(model, model.train_metrics, loss, y, logits)


def test_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    logits = model(x, training=False, return_logits=True)
    return update_metrics(model, model.metrics, model.weighted_loss(y, logits), y, logits)
