"""How far probabilities are from frequencies, and the maps that bring them closer.

A fraud team prices a decision on ``p`` itself (expected loss ``p x Amount``), so
``p`` must mean what it says: of the transactions scored ``p``, a share ``p`` are
fraud. Two measures, both on held-out rows:

- the Brier score, the mean of ``(p - y)^2`` (scikit-learn's ``brier_score_loss``);
- the expected calibration error over equal-mass bins: rows sorted by ``p`` and cut
  into ``bins`` groups of (nearly) equal size, ``ECE = sum_b n_b / n * |mean(y_b) -
  mean(p_b)|``. Equal-width bins would put nearly every row of a 0.17 %-fraud table
  into the first bin and say nothing.

The maps act on the model's logit ``z``: ``p = sigmoid(scale * z + bias)``.

- ``prior``: class weights ``w_fraud / w_normal`` multiply the odds the loss is
  minimised at by that ratio; ``bias = -log(w_fraud / w_normal)`` undoes it.
- ``temperature``: the prior correction, then one factor ``scale`` (``1 / T``).
- ``platt``: ``scale`` and ``bias`` both fitted (Platt scaling): a logistic
  regression of the labels on the logit, without a penalty.

Fitted by maximum likelihood with SciPy on the validation split. NumPy and SciPy
only: the map itself lives in the model (:mod:`fraudkeras.modeling.calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit

from fraudkeras._core.errors import DataError
from fraudkeras._core.validation import check_choice

CALIBRATIONS = ("platt", "temperature", "prior", "none")
DEFAULT_CALIBRATION = "platt"
ECE_BINS = 20


@dataclass(frozen=True)
class LogitMap:
    """``logit -> scale * logit + bias``, and how it was chosen."""

    method: str
    scale: float = 1.0
    bias: float = 0.0
    #: ``-log(w_fraud / w_normal)``: the class weights' shift of the logit
    prior_offset: float = 0.0

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of raw logits."""
        z = np.asarray(logits, dtype=np.float64)
        result: np.ndarray = expit(self.scale * z + self.bias)
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "scale": self.scale,
            "bias": self.bias,
            "prior_offset": self.prior_offset,
        }


def prior_offset(normal_weight: float, fraud_weight: float) -> float:
    """The logit shift that undoes class weights: ``-log(w_fraud / w_normal)``."""
    return -math.log(float(fraud_weight) / float(normal_weight))


def fit_map(
    method: str, logits: np.ndarray, labels: np.ndarray, class_weight: tuple[float, float]
) -> LogitMap:
    """The ``method`` map fitted on raw (validation) logits and labels."""
    check_choice("calibration", method, CALIBRATIONS)
    offset = prior_offset(*class_weight)
    if method == "none":
        return LogitMap("none", prior_offset=offset)
    if method == "prior":
        return LogitMap("prior", 1.0, offset, offset)
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(z) != len(y) or not 0 < y.sum() < len(y):
        raise DataError("calibration needs validation rows of both classes")
    if method == "temperature":
        shifted = z + offset

        def loss_t(log_scale: float) -> float:
            return _log_loss(math.exp(log_scale) * shifted, y)

        found = minimize_scalar(loss_t, bounds=(-5.0, 5.0), method="bounded")
        scale = math.exp(float(found.x))
        return LogitMap("temperature", scale, scale * offset, offset)
    return _platt(z, y, offset)


def _platt(z: np.ndarray, y: np.ndarray, offset: float) -> LogitMap:
    """Logistic regression of ``y`` on ``z`` (no penalty), from the prior-corrected start."""

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        u = a * z + b
        residual = expit(u) - y  # d(log loss)/du per row
        n = len(y)
        gradient = np.array([residual @ z, residual.sum()]) / n
        return _log_loss(u, y), gradient

    found = minimize(
        loss_and_gradient, np.array([1.0, offset]), jac=True, method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 1000},
    )  # fmt: skip
    scale, bias = (float(v) for v in found.x)
    if not (found.success and scale > 0 and math.isfinite(bias)):
        raise DataError(
            "Platt scaling found no increasing map on the validation split "
            "(too few frauds there?); use calibration='temperature' or 'prior'"
        )
    return LogitMap("platt", scale, bias, offset)


def _log_loss(u: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of labels ``y`` under logits ``u``, computed stably."""
    return float(np.mean(np.logaddexp(0.0, u) - y * u))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared difference between probability and outcome."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class Reliability:
    """Equal-mass bins: each bin's row count, mean probability and fraud rate."""

    counts: np.ndarray
    mean_probability: np.ndarray
    fraud_rate: np.ndarray

    @property
    def ece(self) -> float:
        weights = self.counts / self.counts.sum()
        return float(np.sum(weights * np.abs(self.fraud_rate - self.mean_probability)))

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "counts": [int(c) for c in self.counts],
            "mean_probability": [float(v) for v in self.mean_probability],
            "fraud_rate": [float(v) for v in self.fraud_rate],
        }


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Rows sorted by probability and cut into ``bins`` groups of equal size (the
    first ``n % bins`` one row larger); empty groups (fewer rows than bins) dropped."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if not len(p):
        raise DataError("calibration measures need at least one prediction")
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    return Reliability(
        counts=np.array([len(g) for g in groups], dtype=np.int64),
        mean_probability=np.array([p[g].mean() for g in groups]),
        fraud_rate=np.array([y[g].mean() for g in groups]),
    )


def calibration_measures(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Brier score, ECE and the reliability bins of one split's predictions."""
    bins = reliability(labels, probabilities)
    return {
        "brier": brier(labels, probabilities),
        "ece": bins.ece,
        "ece_bins": len(bins.counts),
        "reliability": bins.as_dict(),
    }
