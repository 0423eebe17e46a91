"""PyTorch: gradients with ``loss.backward()``, stateful metric updates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import torch

from fraudkeras.modeling.train_steps.stateful import update_metrics

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


def train_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    model.zero_grad()
    logits = model(x, training=True, return_logits=True)
    loss = model.weighted_loss(y, logits)
    loss.backward()
    variables = model.trainable_weights
    gradients = [variable.value.grad for variable in variables]
    with torch.no_grad():
        model.optimizer.apply(gradients, variables)
    return update_metrics(model, model.train_metrics, loss.detach(), y, logits.detach())


def test_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    with torch.no_grad():
        logits = model(x, training=False, return_logits=True)
        loss = model.weighted_loss(y, logits)
    return update_metrics(model, model.metrics, loss, y, logits)
