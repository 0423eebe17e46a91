"""The NumPy reference the train-step and artifact tests trust, checked on its own:
hand-computed values, central differences and scikit-learn. Pure NumPy."""

from __future__ import annotations

import numpy as np
import numpy_reference as reference
import pytest
from sklearn.preprocessing import StandardScaler


def test_weighted_bce_by_hand() -> None:
    # z = 0: BCE = log 2 for either label; weights 3 (fraud) and 2 (normal), mean of two
    y, z = np.array([1, 0]), np.array([0.0, 0.0])
    assert reference.weighted_bce(y, z, normal=2.0, fraud=3.0) == pytest.approx(2.5 * np.log(2))
    # far-out logits stay finite: BCE(1, -200) = 200, BCE(0, -200) = log(1 + e^-200)
    assert reference.weighted_bce([1, 0], [-200.0, -200.0], 1.0, 1.0) == pytest.approx(100.0)


def test_forward_scales_like_standard_scaler() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(loc=[5.0, -3.0], scale=[2.0, 0.5], size=(200, 2))
    identity = reference.Weights(
        x.mean(axis=0), x.var(axis=0), [(np.eye(2), np.zeros(2)), (np.ones((2, 1)), np.zeros(1))]
    )
    expected = StandardScaler().fit_transform(x)
    _, inputs = reference.forward(identity, x)
    np.testing.assert_allclose(inputs[0], expected, atol=1e-12)
    # the ReLU layer: negative standardized values become 0 before the sum
    np.testing.assert_allclose(
        reference.logits(identity, x), np.maximum(expected, 0).sum(axis=1), atol=1e-12
    )


def test_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 30)) * 3 + 1
    y = (rng.random(64) < 0.3).astype(np.float64)
    weights = reference.known_weights(x, hidden_units=(8, 4), seed=3)
    weights = weights.with_params([p.astype(np.float64) for p in weights.params])
    loss, gradients = reference.loss_and_gradients(weights, x, y, 0.7, 12.0)
    assert loss == pytest.approx(reference.weighted_bce(y, reference.logits(weights, x), 0.7, 12.0))
    eps = 1e-6
    for index, tensor in enumerate(weights.params):
        numeric = np.zeros_like(tensor)
        for position in np.ndindex(tensor.shape):
            shifted = [p.copy() for p in weights.params]
            shifted[index][position] += eps
            up = reference.weighted_bce(y, reference.logits(weights.with_params(shifted), x),
                                        0.7, 12.0)  # fmt: skip
            shifted[index][position] -= 2 * eps
            down = reference.weighted_bce(y, reference.logits(weights.with_params(shifted), x),
                                          0.7, 12.0)  # fmt: skip
            numeric[position] = (up - down) / (2 * eps)
        # float64 central differences agree to ~1e-10 (measured 7e-11)
        np.testing.assert_allclose(gradients[index], numeric, rtol=0, atol=1e-8)


def test_adam_step_by_hand() -> None:
    # first step from zero moments, lr 0.1, g 0.5: m = 0.05, v = 0.00025,
    # alpha = 0.1 * sqrt(1 - 0.999) / (1 - 0.9) = sqrt(0.001)
    state = reference.AdamState(0, [np.zeros(1)], [np.zeros(1)])
    (w,), after = reference.adam_step([np.ones(1)], [np.array([0.5])], state, 0.1)
    step = np.sqrt(0.001) * 0.05 / (np.sqrt(0.00025) + 1e-7)
    assert w[0] == pytest.approx(1 - step, abs=1e-15) and step == pytest.approx(0.1, rel=1e-5)
    assert (after.iterations, after.m[0][0], after.v[0][0]) == (1, pytest.approx(0.05),
                                                                pytest.approx(0.00025))  # fmt: skip
    # a later step (t = 3) from a known state: bias correction by 1 - beta^3
    state = reference.AdamState(2, [np.array([0.2])], [np.array([0.01])])
    (w,), _ = reference.adam_step([np.zeros(1)], [np.array([-1.0])], state, 0.01)
    m, v = 0.2 * 0.9 - 0.1, 0.01 * 0.999 + 0.001
    alpha = 0.01 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3)
    assert w[0] == pytest.approx(-alpha * m / (np.sqrt(v) + 1e-7), rel=1e-12)
