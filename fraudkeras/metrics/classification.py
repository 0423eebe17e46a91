"""Classification metrics with scikit-learn, at 0.5 and at a threshold chosen on
the validation split: the numbers every ``metrics.json`` and manifest holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraudkeras.metrics.thresholds import (
    DEFAULT_REVIEW_COST,
    DEFAULT_THRESHOLD,
    ThresholdPolicy,
    baselines,
    choose_threshold,
    costs,
)


@dataclass(frozen=True)
class Predictions:
    """One split's labels, fraud probabilities and amounts; where the report needs
    them, also each row's ``Time`` and position in the table."""

    labels: np.ndarray
    probabilities: np.ndarray
    amounts: np.ndarray
    times: np.ndarray | None = None
    rows: np.ndarray | None = None


def at_threshold(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    amounts: np.ndarray | None = None,
    review_cost: float = DEFAULT_REVIEW_COST,
) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix when flagging p >= threshold;
    with ``amounts``, also the expected cost and savings (:func:`thresholds.costs`)."""
    predicted = (probabilities >= threshold).astype(np.int32)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    money = {} if amounts is None else costs(labels, predicted, amounts, review_cost)
    return {
        "threshold": float(threshold),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
        **money,
    }


def ranking_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Row and fraud counts, PR-AUC (average precision) and ROC-AUC; the AUCs are
    None when only one class is present, where they are undefined."""
    both = 0 < int(labels.sum()) < len(labels)
    return {
        "rows": len(labels),
        "frauds": int(labels.sum()),
        "pr_auc": float(average_precision_score(labels, probabilities)) if both else None,
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both else None,
    }


def split_metrics(scored: Predictions, threshold: float, policy: ThresholdPolicy) -> dict[str, Any]:
    """Ranking metrics, both thresholds' confusion numbers and the baseline costs."""
    y, p, amounts = scored.labels, scored.probabilities, scored.amounts
    return {
        **ranking_metrics(y, p),
        "at_0.5": at_threshold(y, p, DEFAULT_THRESHOLD, amounts, policy.review_cost),
        "at_tuned": at_threshold(y, p, threshold, amounts, policy.review_cost),
        "baseline_costs": baselines(y, amounts, policy.review_cost),
    }


def evaluate_predictions(
    validation: Predictions, test: Predictions, policy: ThresholdPolicy
) -> dict[str, Any]:
    """Metrics on both splits. The threshold is chosen by ``policy`` on validation
    only ("at_tuned" in each split); the test split only reports."""
    tuned = choose_threshold(
        validation.labels, validation.probabilities, validation.amounts, policy
    )
    return {
        "tuned_threshold": tuned,
        "threshold_policy": asdict(policy),
        "validation": split_metrics(validation, tuned, policy),
        "test": split_metrics(test, tuned, policy),
    }


def recorded_policy(metrics: dict[str, Any]) -> dict[str, Any]:
    """The threshold policy a run's metrics record; runs made before thresholds had
    strategies used the defaults (max F1)."""
    return {**asdict(ThresholdPolicy()), **metrics.get("threshold_policy", {})}


def thresholds_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """The thresholds an export manifest carries for serving."""
    return {
        "default": DEFAULT_THRESHOLD,
        "tuned": metrics["tuned_threshold"],
        "policy": recorded_policy(metrics),
    }
