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

from fraudkeras.metrics.calibration import calibration_measures
from fraudkeras.metrics.decisions import Decision, choose_decision, decision_costs
from fraudkeras.metrics.thresholds import (
    DEFAULT_REVIEW_COST,
    DEFAULT_THRESHOLD,
    ThresholdPolicy,
    baselines,
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
    decision = Decision("threshold", threshold, review_cost)
    return {"threshold": float(threshold), **at_decision(labels, probabilities, decision, amounts)}


def at_decision(
    labels: np.ndarray,
    probabilities: np.ndarray,
    decision: Decision,
    amounts: np.ndarray | None = None,
) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix of ``decision``'s alerts; with
    ``amounts``, also the expected cost and savings (an ``expected-cost`` decision
    needs them)."""
    if amounts is None and decision.rule != "threshold":
        raise ValueError("an expected-cost decision needs the amounts")
    given = np.zeros(len(probabilities)) if amounts is None else amounts
    flagged = decision.flags(probabilities, given)
    return at_flags(labels, flagged, amounts, decision.review_cost, decision.chargeback_fee)


def at_flags(
    labels: np.ndarray,
    flagged: np.ndarray,
    amounts: np.ndarray | None = None,
    review_cost: float = DEFAULT_REVIEW_COST,
    chargeback_fee: float = 0.0,
) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix of a set of alerts; with
    ``amounts``, also the expected cost and savings."""
    predicted = np.asarray(flagged).reshape(-1).astype(np.int32)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    money = (
        {} if amounts is None else costs(labels, predicted, amounts, review_cost, chargeback_fee)
    )
    return {
        "flagged": int(predicted.sum()),
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


def split_metrics(scored: Predictions, decision: Decision) -> dict[str, Any]:
    """Ranking and calibration metrics, the confusion numbers at 0.5, at the
    decision's threshold and of the decision itself, and what the decision
    costs beside the baselines and the rules it must beat."""
    y, p, amounts = scored.labels, scored.probabilities, scored.amounts
    review, fee = decision.review_cost, decision.chargeback_fee
    at_half = Decision("threshold", DEFAULT_THRESHOLD, review, fee)
    tuned = Decision("threshold", decision.threshold, review, fee)
    frauds = int(np.sum(y))
    return {
        **ranking_metrics(y, p),
        **{k: v for k, v in calibration_measures(y, p).items() if k != "reliability"},
        "at_0.5": {"threshold": DEFAULT_THRESHOLD, **at_decision(y, p, at_half, amounts)},
        "at_tuned": {"threshold": decision.threshold, **at_decision(y, p, tuned, amounts)},
        "at_decision": at_decision(y, p, decision, amounts),
        "baseline_costs": baselines(y, amounts, review, fee),
        "decision_costs": decision_costs(y, p, amounts, decision) if frauds else None,
    }


def evaluate_predictions(
    validation: Predictions, test: Predictions, policy: ThresholdPolicy
) -> dict[str, Any]:
    """Metrics on both splits. The decision (and its threshold) is chosen by
    ``policy`` on validation only ("at_tuned" and "at_decision" in each split);
    the test split only reports."""
    decision = choose_decision(
        validation.labels, validation.probabilities, validation.amounts, policy
    )
    return {
        "tuned_threshold": decision.threshold,
        "threshold_policy": asdict(policy),
        "decision": decision.as_dict(),
        "validation": split_metrics(validation, decision),
        "test": split_metrics(test, decision),
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
        "decision": recorded_decision(metrics).as_dict(),
    }


def recorded_decision(metrics: dict[str, Any]) -> Decision:
    """The decision a run's metrics record; runs made before decisions had rules
    flagged at their tuned threshold."""
    if "decision" in metrics:
        return Decision.from_dict(metrics["decision"])
    policy = recorded_policy(metrics)
    return Decision(
        "threshold", float(metrics["tuned_threshold"]), float(policy["review_cost"]),
        float(policy.get("chargeback_fee", 0.0)),
    )  # fmt: skip
