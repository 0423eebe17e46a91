"""The per-epoch validation callback against the model's own predictions, the
NumPy loss and scikit-learn's AUCs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudkeras.data.splits import split
from fraudkeras.data.tables import Transactions
from fraudkeras.modeling.model import fraud_probabilities
from fraudkeras.training.validation import Validation
from helpers import make_model, numpy_weighted_bce


def test_logs_match_the_references(small: Transactions) -> None:
    parts = split(small, "stratified", 42)
    model = make_model(parts.train.x, class_weight=(0.6, 9.0), seed=3)
    x, y = parts.validation.x, parts.validation.y
    logs: dict[str, float] = {}
    Validation(model, x, y).on_epoch_end(0, logs)
    p = fraud_probabilities(model, x)
    logits = np.log(p) - np.log1p(-p)
    assert logs["val_loss"] == pytest.approx(numpy_weighted_bce(y, logits, 0.6, 9.0), rel=1e-5)
    assert logs["val_pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert logs["val_roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)


def test_one_class_records_zero_aucs(small: Transactions) -> None:
    parts = split(small, "stratified", 42)
    model = make_model(parts.train.x)
    normal = parts.validation.y == 0
    logs: dict[str, float] = {}
    Validation(model, parts.validation.x[normal], parts.validation.y[normal]).on_epoch_end(0, logs)
    assert logs["val_pr_auc"] == logs["val_roc_auc"] == 0.0 and np.isfinite(logs["val_loss"])
