from __future__ import annotations

import numpy as np
from keras import ops

from fraudkeras.modeling.loss import ClassWeightedBinaryCrossentropy
from helpers import numpy_weighted_bce


def test_matches_numpy_for_a_fixed_batch() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(257) < 0.2).astype(np.float32)
    logits = rng.normal(scale=3, size=(257, 1)).astype(np.float32)
    got = ClassWeightedBinaryCrossentropy(0.7, 12.5)(y, ops.convert_to_tensor(logits))
    assert np.isclose(
        float(ops.convert_to_numpy(got)),
        numpy_weighted_bce(y, logits.ravel(), 0.7, 12.5),
        rtol=1e-5,
    )


def test_weight_scales_each_class_exactly() -> None:
    y = np.array([1, 1, 0, 0], dtype=np.float32)
    logits = ops.convert_to_tensor(np.array([[0.3], [-1.0], [0.5], [2.0]], dtype=np.float32))
    base = float(ops.convert_to_numpy(ClassWeightedBinaryCrossentropy(1, 1)(y, logits)))
    fraud_only = numpy_weighted_bce(y, np.array([0.3, -1.0, 0.5, 2.0]), 0, 1)
    boosted = float(ops.convert_to_numpy(ClassWeightedBinaryCrossentropy(1, 5)(y, logits)))
    assert np.isclose(boosted - base, 4 * fraud_only, rtol=1e-5)


def test_extreme_logits_stay_finite() -> None:
    y = np.array([1, 0], dtype=np.float32)
    logits = ops.convert_to_tensor(np.array([[-200.0], [200.0]], dtype=np.float32))
    loss = float(ops.convert_to_numpy(ClassWeightedBinaryCrossentropy(1, 1)(y, logits)))
    assert np.isfinite(loss) and np.isclose(loss, 200.0, rtol=1e-5)


def test_the_loss_saves_and_loads_with_its_weights() -> None:
    import keras

    loss = ClassWeightedBinaryCrossentropy(0.5, 7.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.normal_weight, again.fraud_weight) == (0.5, 7.0)
