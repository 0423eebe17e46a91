from __future__ import annotations

import numpy as np
from keras import ops

from fraudkeras.modeling.loss import weighted_binary_crossentropy
from helpers import numpy_weighted_bce


def test_matches_numpy_for_a_fixed_batch() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(257) < 0.2).astype(np.float32)
    logits = rng.normal(scale=3, size=(257, 1)).astype(np.float32)
    got = weighted_binary_crossentropy(
        y, ops.convert_to_tensor(logits), normal_weight=0.7, fraud_weight=12.5
    )
    assert np.isclose(
        float(ops.convert_to_numpy(got)),
        numpy_weighted_bce(y, logits.ravel(), 0.7, 12.5),
        rtol=1e-5,
    )


def test_weight_scales_each_class_exactly() -> None:
    y = np.array([1, 1, 0, 0], dtype=np.float32)
    logits = ops.convert_to_tensor(np.array([[0.3], [-1.0], [0.5], [2.0]], dtype=np.float32))
    base = float(
        ops.convert_to_numpy(
            weighted_binary_crossentropy(y, logits, normal_weight=1, fraud_weight=1)
        )
    )
    fraud_only = numpy_weighted_bce(y, np.array([0.3, -1.0, 0.5, 2.0]), 0, 1)
    boosted = float(
        ops.convert_to_numpy(
            weighted_binary_crossentropy(y, logits, normal_weight=1, fraud_weight=5)
        )
    )
    assert np.isclose(boosted - base, 4 * fraud_only, rtol=1e-5)


def test_extreme_logits_stay_finite() -> None:
    y = np.array([1, 0], dtype=np.float32)
    logits = ops.convert_to_tensor(np.array([[-200.0], [200.0]], dtype=np.float32))
    loss = float(
        ops.convert_to_numpy(
            weighted_binary_crossentropy(y, logits, normal_weight=1, fraud_weight=1)
        )
    )
    assert np.isfinite(loss) and np.isclose(loss, 200.0, rtol=1e-5)
