"""Periodic numeric embeddings (Gorishniy, Rubachev and Babenko, "On Embeddings
for Numerical Features in Tabular Deep Learning", NeurIPS 2022: the "PLR"
embedding). Each scaled feature ``x_i`` becomes

    v_i = ReLU(W_i [sin(2 pi c_i x_i), cos(2 pi c_i x_i)] + b_i)

with ``k`` trainable frequencies ``c_i`` and a linear map ``W_i, b_i`` of its own
to ``d`` dimensions; the ``v_i`` are concatenated for the hidden layers. An MLP
on raw scalars struggles to draw the sharp, non-monotone boundaries fraud
features need (a V-feature that is suspicious only in a narrow band); periodic
features of learned frequencies give it those shapes at the first layer.

All features are embedded at once (one ``einsum``, no loop over features), in
``keras.ops`` only, so the layer runs on every backend and in every exported
artifact (SavedModel, LiteRT, ONNX).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

#: frequencies per feature (the paper's ``k``)
FREQUENCIES = 8
#: output dimensions per feature (the paper's ``d``)
EMBEDDING_DIMS = 8
#: standard deviation of the frequencies' normal initialization (the paper's sigma,
#: tuned there within [0.01, 100]; rtdl_num_embeddings defaults to 0.01). The inputs
#: here are standardized, so 0.1 starts each sine at ~0.6 rad per standard deviation:
#: nearly linear near the mean, bending in the tails where frauds sit.
FREQUENCY_SCALE = 0.1


@keras.saving.register_keras_serializable(package="fraudkeras")
class PeriodicEmbedding(keras.layers.Layer):
    """``(batch, features)`` scaled features -> ``(batch, features * dims)``."""

    def __init__(
        self,
        frequencies: int = FREQUENCIES,
        dims: int = EMBEDDING_DIMS,
        frequency_scale: float = FREQUENCY_SCALE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "periodic_embedding")
        super().__init__(**kwargs)
        self.frequencies = int(frequencies)
        self.dims = int(dims)
        self.frequency_scale = float(frequency_scale)

    def build(self, input_shape: Any) -> None:
        features = int(input_shape[-1])
        self.frequency = self.add_weight(
            shape=(features, self.frequencies),
            initializer=keras.initializers.RandomNormal(stddev=self.frequency_scale),
            name="frequency",
        )
        # each feature's linear map has 2k inputs (a sine and a cosine per frequency),
        # initialized as PyTorch's Linear of that fan-in (as the paper's code does);
        # Keras's fan-in of a 3-D kernel would count every feature's inputs
        limit = 1 / math.sqrt(2 * self.frequencies)
        uniform = keras.initializers.RandomUniform(-limit, limit)
        self.kernel = self.add_weight(
            shape=(features, 2 * self.frequencies, self.dims), initializer=uniform, name="kernel"
        )
        self.bias = self.add_weight(shape=(features, self.dims), initializer=uniform, name="bias")
        self.built = True

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.frequency.dtype)
        angles = (2 * math.pi) * ops.expand_dims(x, -1) * self.frequency  # (batch, f, k)
        periodic = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        embedded = ops.relu(ops.einsum("bfi,fid->bfd", periodic, self.kernel) + self.bias)
        return ops.reshape(embedded, (-1, embedded.shape[1] * self.dims))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], int(input_shape[-1]) * self.dims)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            frequencies=self.frequencies,
            dims=self.dims,
            frequency_scale=self.frequency_scale,
        )
        return config
