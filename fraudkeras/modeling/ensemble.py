"""An efficient ensemble of K members in one network: TabM-mini (Gorishniy,
Kotelnikov and Babenko, "TabM: Advancing Tabular Deep Learning with
Parameter-Efficient Ensembling", ICLR 2025), a BatchEnsemble variant.

Every member sees the same batch. Member ``k`` multiplies the hidden layers'
input by a vector ``r_k`` of its own (:class:`MemberInputs`, initialized with
random signs, as TabM-mini does, so the members start different), then runs the
hidden layers, whose kernels and biases all members share, and ends in a logit
of its own (:class:`MemberLogits`). The model's logit is the members' mean, one
per row, shape ``(batch, 1)``, so everything after it (the loss, calibration,
thresholds, every exported artifact) is unchanged. The members cost K times the
hidden layers' arithmetic, not K times their weights.

The loss is on the mean logit. TabM trains each member on its own loss (the mean
of K losses); here that would need ``call`` to return K logits per row while it
trains and one afterwards, and the backend steps, their metrics and Keras's
compiled loss all take the one ``(batch, 1)`` logit the model outputs.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def random_signs(shape: Any, dtype: Any = None) -> Any:
    """+1 or -1, each with probability one half (TabM-mini's initialization)."""
    draws = keras.random.uniform(shape, minval=-1.0, maxval=1.0, dtype=dtype or "float32")
    return ops.where(draws < 0, -1.0, 1.0)


@keras.saving.register_keras_serializable(package="fraudkeras")
class MemberInputs(keras.layers.Layer):
    """``(batch, width)`` -> ``(batch, members, width)``: each member's own
    elementwise multiple (``x * r_k``) of the same rows."""

    def __init__(self, members: int, **kwargs: Any) -> None:
        kwargs.setdefault("name", "member_inputs")
        super().__init__(**kwargs)
        self.members = int(members)

    def build(self, input_shape: Any) -> None:
        self.multiplier = self.add_weight(
            shape=(self.members, int(input_shape[-1])),
            initializer=random_signs,
            name="multiplier",
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        return ops.expand_dims(ops.cast(inputs, self.multiplier.dtype), 1) * self.multiplier

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self.members, int(input_shape[-1]))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(members=self.members)
        return config


@keras.saving.register_keras_serializable(package="fraudkeras")
class MemberLogits(keras.layers.Layer):
    """``(batch, members, width)`` -> ``(batch, 1)``: member ``k``'s logit is
    ``h_k . kernel[:, k] + bias[k]``; the output is their mean."""

    def __init__(self, members: int, **kwargs: Any) -> None:
        kwargs.setdefault("name", "logit")
        super().__init__(**kwargs)
        self.members = int(members)

    def build(self, input_shape: Any) -> None:
        # each member's head initialized as a Dense(1) is (Glorot uniform, zero bias)
        width = int(input_shape[-1])
        limit = (6 / (width + 1)) ** 0.5
        self.kernel = self.add_weight(
            shape=(width, self.members),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.members,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs: Any) -> Any:
        logits = ops.einsum("bki,ik->bk", inputs, self.kernel) + self.bias
        return ops.mean(logits, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(members=self.members)
        return config
