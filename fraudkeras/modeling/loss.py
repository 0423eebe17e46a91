"""The class-weighted binary cross-entropy, written once in ``keras.ops``: a
``keras.losses.Loss`` that :class:`~fraudkeras.modeling.model.FraudMLP` compiles
with when ``compile`` names no loss, so every backend's step optimises exactly
the same function through Keras's own ``compute_loss``."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fraudkeras")
class ClassWeightedBinaryCrossentropy(keras.losses.Loss):
    """``w_i * BCE(y_i, sigmoid(z_i))`` of every row, from the logits ``z``.

    ``w_i`` is ``fraud_weight`` for a fraud and ``normal_weight`` otherwise.
    Keras's default reduction divides by the batch size (not by the weight
    total), so a weight scales the gradient exactly as it reads. Computed from
    logits (``from_logits`` is always true: FraudMLP hands a loss that says so
    its logits), which stays finite where ``log(sigmoid(z))`` would underflow.
    """

    from_logits = True

    def __init__(
        self,
        normal_weight: float = 1.0,
        fraud_weight: float = 1.0,
        name: str = "class_weighted_binary_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.normal_weight, self.fraud_weight = float(normal_weight), float(fraud_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return weighted_bce_rows(
            y_true, y_pred, normal_weight=self.normal_weight, fraud_weight=self.fraud_weight
        )

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(normal_weight=self.normal_weight, fraud_weight=self.fraud_weight)
        return config


def weighted_bce_rows(
    labels: Any, logits: Any, *, normal_weight: float, fraud_weight: float
) -> Any:
    """``w_i * BCE(y_i, sigmoid(z_i))`` of every row, a flat vector: what the loss
    averages, and what validation averages over all its rows at once."""
    y = ops.cast(ops.reshape(labels, (-1,)), logits.dtype)
    z = ops.reshape(logits, (-1,))
    per_example = ops.binary_crossentropy(y, z, from_logits=True)
    weights = y * fraud_weight + (1.0 - y) * normal_weight
    return weights * per_example
