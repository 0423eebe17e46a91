"""Calibration measures and maps, against scikit-learn and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.metrics.calibration import brier, calibration_measures, fit_map, reliability
from helpers import only_backend

pytestmark = only_backend("jax")  # NumPy only: the backend changes nothing


def synthetic(seed: int = 0, n: int = 5013) -> tuple[np.ndarray, np.ndarray]:
    """Rare positives whose true log-odds are 1.7 * z - 2.5: a miscalibrated logit z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.0, 2.0, n)
    y = (rng.random(n) < expit(1.7 * z - 2.5)).astype(np.int64)
    return z, y


def hand_ece(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    """Equal-mass ECE written out: sorted, cut into groups of n // bins rows, the
    first n % bins groups one row more."""
    order = np.argsort(p, kind="stable")
    n, total, start = len(p), 0.0, 0
    for b in range(bins):
        size = n // bins + (1 if b < n % bins else 0)
        rows = order[start : start + size]
        start += size
        total += size / n * abs(y[rows].sum() / size - p[rows].sum() / size)
    return total


def test_brier_matches_sklearn() -> None:
    z, y = synthetic()
    p = expit(z)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("n", [5013, 40, 20])
def test_ece_matches_hand_computation(n: int) -> None:
    z, y = synthetic(n=n)
    p = expit(z)
    measures = calibration_measures(y, p)
    assert measures["ece"] == pytest.approx(hand_ece(y, p, 20), abs=1e-12)
    assert measures["ece_bins"] == 20
    assert sum(measures["reliability"]["counts"]) == n


def test_ece_is_zero_when_every_bin_matches_its_rate() -> None:
    p = np.repeat([0.0, 0.5, 1.0], 20)
    y = np.r_[np.zeros(20), np.tile([0, 1], 10), np.ones(20)]
    assert reliability(y, p, bins=3).ece == pytest.approx(0.0, abs=1e-15)


def test_platt_matches_sklearn_logistic_regression() -> None:
    z, y = synthetic()
    fitted = fit_map("platt", z, y, (1.0, 1.0))
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(z[:, None], y)
    assert fitted.scale == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    assert fitted.bias == pytest.approx(reference.intercept_[0], rel=1e-4)
    assert fitted.scale == pytest.approx(1.7, abs=0.2)  # the true map, within sampling noise


def test_temperature_is_a_slope_through_the_prior_corrected_logit() -> None:
    z, y = synthetic()
    weights = (0.5, 20.0)
    offset = -math.log(20.0 / 0.5)
    fitted = fit_map("temperature", z, y, weights)
    shifted = (z + offset)[:, None]
    reference = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    slope = reference.fit(shifted, y).coef_[0, 0]
    assert fitted.scale == pytest.approx(slope, rel=1e-4)
    assert fitted.bias == pytest.approx(slope * offset, rel=1e-4)


def test_prior_undoes_class_weights() -> None:
    """Weighting frauds by w multiplies the optimal odds by w: the offset divides them back."""
    z, y = synthetic()
    fitted = fit_map("prior", z, y, (0.5, 289.0))
    assert (fitted.scale, fitted.bias) == (1.0, pytest.approx(-math.log(289.0 / 0.5)))
    odds = np.exp(z)
    np.testing.assert_allclose(fitted.apply(z), (odds / 578.0) / (1 + odds / 578.0), rtol=1e-12)
    assert fit_map("none", z, y, (0.5, 289.0)).apply(z) == pytest.approx(expit(z))


def test_fits_refuse_one_class_and_unknown_methods() -> None:
    z, _ = synthetic(n=50)
    with pytest.raises(DataError, match="both classes"):
        fit_map("platt", z, np.zeros(50), (1.0, 1.0))
    with pytest.raises(ParameterError, match="calibration"):
        fit_map("isotonic", z, np.zeros(50), (1.0, 1.0))
