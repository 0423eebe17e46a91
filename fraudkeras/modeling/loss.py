"""The class-weighted binary cross-entropy, written once in ``keras.ops`` so that
every backend's train step optimises exactly the same function."""

from __future__ import annotations

from typing import Any

from keras import ops


def weighted_binary_crossentropy(
    labels: Any, logits: Any, *, normal_weight: float, fraud_weight: float
) -> Any:
    """Mean over the batch of ``w_i * BCE(y_i, sigmoid(z_i))``.

    ``w_i`` is ``fraud_weight`` for a fraud and ``normal_weight`` otherwise. The
    mean divides by the batch size (Keras's ``sum_over_batch_size``), not by the
    weight total, so a weight scales the gradient exactly as it reads. Computed
    from logits, which stays finite where ``log(sigmoid(z))`` would underflow.
    """
    return ops.mean(
        weighted_bce_rows(labels, logits, normal_weight=normal_weight, fraud_weight=fraud_weight)
    )


def weighted_bce_rows(
    labels: Any, logits: Any, *, normal_weight: float, fraud_weight: float
) -> Any:
    """``w_i * BCE(y_i, sigmoid(z_i))`` of every row, a flat vector: what
    :func:`weighted_binary_crossentropy` averages. Data-parallel steps sum it
    themselves, over the rows a device holds, and divide by the global batch's
    row count (:mod:`fraudkeras.modeling.train_steps`)."""
    y = ops.cast(ops.reshape(labels, (-1,)), logits.dtype)
    z = ops.reshape(logits, (-1,))
    per_example = ops.binary_crossentropy(y, z, from_logits=True)
    weights = y * fraud_weight + (1.0 - y) * normal_weight
    return weights * per_example
