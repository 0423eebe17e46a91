"""Test-split metrics computed with scikit-learn, at 0.5 and at a threshold tuned
on the validation split, and their printed table."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraudkeras import rundir
from fraudkeras.data import load_transactions
from fraudkeras.splits import split

log = logging.getLogger("fraudkeras")
DEFAULT_THRESHOLD = 0.5


def evaluate(
    run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Re-evaluate a run folder's model on its test split, under the active backend.

    The data defaults to the source the run was trained on; the split and seed
    are the run's. The result has the layout of the run's ``metrics.json`` plus
    ``data_matches``: False (and a logged warning) when the data's fingerprint
    differs from the one recorded at training time.
    """
    import keras  # here, not at the top: scoring uses this module without Keras

    from fraudkeras.model import load_model, predict

    folder = rundir.check_run_dir(Path(run_dir))
    config = rundir.read_json(folder / rundir.CONFIG_FILE)
    recorded = rundir.read_json(folder / rundir.DATA_FILE)
    transactions = load_transactions(data if data is not None else config["data"])
    matches = transactions.fingerprint() == recorded.get("fingerprint")
    if not matches:
        log.warning(
            "data differs from what %s was trained on (fingerprint mismatch): "
            "the split and metrics are not comparable",
            folder,
        )
    parts = split(transactions, config["split"], config["split_seed"])
    model = load_model(folder / rundir.MODEL_FILE)
    metrics = evaluate_predictions(
        (parts.validation.y, predict(model, parts.validation.x)),
        (parts.test.y, predict(model, parts.test.x)),
    )
    return {
        "backend": keras.backend.backend(),
        "split": parts.kind,
        "data_matches": matches,
        **metrics,
    }


def tune_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability threshold with the highest F1 (predict fraud when p >= t)."""
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return float(thresholds[int(np.argmax(f1))])


def at_threshold(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix when flagging p >= threshold."""
    predicted = (probabilities >= threshold).astype(np.int32)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    return {
        "threshold": float(threshold),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
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


def split_metrics(labels: np.ndarray, probabilities: np.ndarray, tuned: float) -> dict[str, Any]:
    return {
        **ranking_metrics(labels, probabilities),
        "at_0.5": at_threshold(labels, probabilities, DEFAULT_THRESHOLD),
        "at_tuned": at_threshold(labels, probabilities, tuned),
    }


def evaluate_predictions(
    validation: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """Metrics on both splits; the tuned threshold is chosen on validation only."""
    tuned = tune_threshold(*validation)
    return {
        "tuned_threshold": tuned,
        "validation": split_metrics(*validation, tuned),
        "test": split_metrics(*test, tuned),
    }


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of the test metrics, for terminals and logs."""
    test = metrics["test"]
    rows = [("", "@ 0.5", f"@ tuned {test['at_tuned']['threshold']:.4f}")]
    for key in ("precision", "recall", "f1", "tp", "fp", "fn", "tn"):
        low, tuned = test["at_0.5"][key], test["at_tuned"][key]
        fmt = "{:.4f}" if isinstance(low, float) else "{:d}"
        rows.append((key, fmt.format(low), fmt.format(tuned)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"test split: {test['rows']} rows, {test['frauds']} frauds | "
        f"PR-AUC {test['pr_auc']:.4f} | ROC-AUC {test['roc_auc']:.4f}"
    ]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)
