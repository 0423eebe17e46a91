"""Calibrating a trained model on its run's validation split, measured before and after."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logit

from fraudkeras.metrics.calibration import calibration_measures, fit_map
from fraudkeras.metrics.classification import Predictions

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP

log = logging.getLogger("fraudkeras")
Holdout = tuple[Predictions, Predictions]


def calibrate(
    model: FraudMLP, holdout: Callable[[], Holdout], method: str
) -> tuple[Holdout, dict[str, Any]]:
    """Fit ``method``'s map on the validation split's raw logits, set it into the
    model's calibration layer, and return the holdout predictions of the
    calibrated model with a record of the map and of Brier score, ECE and
    reliability bins on both splits, before and after.

    ``holdout()`` predicts validation and test with the model as it is now; it
    runs twice (raw, then calibrated), so the recorded "after" numbers are the
    model's own outputs, as every artifact will give them.
    """
    layer = model.calibration
    if layer is None:
        raise ValueError("this model has no calibration layer")
    layer.reset()
    raw = holdout()
    validation = raw[0]
    # the probabilities are a float64 sigmoid of float32 logits: logit() recovers them
    logits = logit(np.clip(validation.probabilities, 1e-300, 1 - 1e-16))
    fitted = fit_map(method, logits, validation.labels, model.class_weight)
    layer.set_map(fitted)
    calibrated = holdout() if method != "none" else raw
    record: dict[str, Any] = {**fitted.as_dict()}
    for name, before, after in zip(("validation", "test"), raw, calibrated, strict=True):
        record[name] = {
            "before": calibration_measures(before.labels, before.probabilities),
            "after": calibration_measures(after.labels, after.probabilities),
        }
    log.info(
        "calibration (%s): scale %.4g, bias %.4g; test ECE %.3g -> %.3g, Brier %.3g -> %.3g",
        method, fitted.scale, fitted.bias,
        record["test"]["before"]["ece"], record["test"]["after"]["ece"],
        record["test"]["before"]["brier"], record["test"]["after"]["brier"],
    )  # fmt: skip
    return calibrated, record
