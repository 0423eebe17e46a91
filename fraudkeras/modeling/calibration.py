"""The calibration map as a layer of the model: ``logit -> scale * logit + bias``.

It sits after the logit layer inside ``FraudMLP.call``, so every artifact traced
from the model (``.keras``, SavedModel, LiteRT, ONNX) outputs calibrated
probabilities. Its two weights are not trainable: they are identity while the
model trains and are set once afterwards from a map fitted on the validation
split (:func:`fraudkeras.metrics.calibration.fit_map`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from fraudkeras.metrics.calibration import LogitMap


@keras.saving.register_keras_serializable(package="fraudkeras")
class LogitCalibration(keras.layers.Layer):
    """``scale * logit + bias``: identity until :meth:`set_map`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("name", "calibration")
        super().__init__(**kwargs)

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(1,), initializer="ones", trainable=False, name="scale")
        self.bias = self.add_weight(shape=(1,), initializer="zeros", trainable=False, name="bias")
        self.built = True

    def call(self, logits: Any) -> Any:
        return logits * self.scale + self.bias

    def set_map(self, fitted: LogitMap) -> None:
        self.scale.assign(np.array([fitted.scale], np.float32))
        self.bias.assign(np.array([fitted.bias], np.float32))

    def reset(self) -> None:
        """Back to identity (the raw logits)."""
        self.set_map(LogitMap("none"))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape
