"""Test-split metrics computed with scikit-learn, at 0.5 and at a threshold tuned
on the validation split, and their printed table."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
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

from fraudkeras._core import files as rundir
from fraudkeras._core.errors import DataError
from fraudkeras.data.splits import Part, Split, split
from fraudkeras.data.tables import load_transactions
from fraudkeras.metrics.thresholds import (
    DEFAULT_REVIEW_COST,
    ThresholdPolicy,
    baselines,
    choose_threshold,
    costs,
)
from fraudkeras.runs.config import TrainConfig

log = logging.getLogger("fraudkeras")
DEFAULT_THRESHOLD = 0.5


def evaluate(
    run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Re-evaluate a run folder's model on its test split, under the active backend.

    The data defaults to the source the run was trained on; the split, seed and
    threshold policy are the run's. The result has the
    layout of the run's ``metrics.json`` plus ``data_matches``: False (and a
    logged warning) when the data's fingerprint differs from the one recorded at
    training time.
    """
    import keras  # here, not at the top: scoring uses this module without Keras

    run = RunPredictions.load(run_dir, data)
    metrics = evaluate_predictions(
        run.validation, run.test, TrainConfig.from_record(run.config).threshold_policy()
    )
    return {
        "backend": keras.backend.backend(),
        "split": run.parts.kind,
        "data_matches": run.data_matches,
        **metrics,
    }


@dataclass
class RunPredictions:
    """A run folder's model, its split of the data and its predictions on the
    validation and test parts: what evaluation, thresholds and reports start from."""

    folder: Path
    config: dict[str, Any]
    model: Any
    parts: Split
    validation: Predictions
    test: Predictions
    data_matches: bool

    @classmethod
    def load(
        cls, run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None
    ) -> RunPredictions:
        from fraudkeras.modeling.model import load_model

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
        return cls(
            folder, config, model, parts,
            predictions(model, parts.validation), predictions(model, parts.test), matches,
        )  # fmt: skip


def predictions(model: Any, part: Part) -> Predictions:
    """The model's probabilities on one part of a split."""
    from fraudkeras.modeling.model import predict

    return Predictions(part.y, predict(model, part.x), part.amounts)


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


@dataclass(frozen=True)
class Predictions:
    """One split's labels, fraud probabilities and amounts."""

    labels: np.ndarray
    probabilities: np.ndarray
    amounts: np.ndarray


def split_metrics(scored: Predictions, threshold: float, policy: ThresholdPolicy) -> dict[str, Any]:
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


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of the test metrics, for terminals and logs."""
    test = metrics["test"]
    policy = recorded_policy(metrics)
    rows = [("", "@ 0.5", f"@ {policy['strategy']} {test['at_tuned']['threshold']:.4f}")]
    keys = ["precision", "recall", "f1", "tp", "fp", "fn", "tn"]
    if "cost" in test["at_tuned"]:
        keys += ["cost", "savings"]
    for key in keys:
        low, tuned = test["at_0.5"][key], test["at_tuned"][key]
        if key in ("cost", "savings"):
            fmt = "{:,.2f}"
        else:
            fmt = "{:.4f}" if isinstance(low, float) else "{:d}"
        rows.append((key, fmt.format(low), fmt.format(tuned)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"test split: {test['rows']} rows, {test['frauds']} frauds | "
        f"PR-AUC {test['pr_auc']:.4f} | ROC-AUC {test['roc_auc']:.4f}"
    ]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    if "baseline_costs" in test:
        base = test["baseline_costs"]
        lines.append(
            f"cost = missed fraud amount + {policy['review_cost']:g} "
            f"per false alarm; flag nothing {base['flag_nothing']:,.2f}, "
            f"flag everything {base['flag_everything']:,.2f}"
        )
    return "\n".join(lines)


def retune(run_dir: str | os.PathLike[str], policy: ThresholdPolicy) -> dict[str, Any]:
    """Choose the run's threshold again with ``policy`` (on validation) and record
    it in ``metrics.json``, ``config.json`` and, if the run was exported, in the
    export manifest. Returns the updated metrics."""
    from fraudkeras.deploy.export import EXPORT_DIR, MANIFEST_FILE

    run = RunPredictions.load(run_dir)
    if not run.data_matches:
        raise DataError(f"{run.config['data']}: differs from the data {run.folder} was trained on")
    metrics = {
        **rundir.read_json(run.folder / rundir.METRICS_FILE),
        **evaluate_predictions(run.validation, run.test, policy),
    }
    config = {
        **run.config,
        "threshold_strategy": policy.strategy,
        "target_recall": policy.target_recall,
        "review_cost": policy.review_cost,
    }
    rundir.write_json(run.folder / rundir.METRICS_FILE, metrics)
    rundir.write_json(run.folder / rundir.CONFIG_FILE, config)
    manifest_path = run.folder / EXPORT_DIR / MANIFEST_FILE
    if manifest_path.is_file():
        manifest = rundir.read_json(manifest_path)
        manifest["thresholds"] = thresholds_record(metrics)
        manifest["test_metrics"] = metrics["test"]
        rundir.write_json(manifest_path, manifest)
    return metrics


def thresholds_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """The thresholds an export manifest carries for serving."""
    return {
        "default": DEFAULT_THRESHOLD,
        "tuned": metrics["tuned_threshold"],
        "policy": recorded_policy(metrics),
    }


def recorded_policy(metrics: dict[str, Any]) -> dict[str, Any]:
    """The threshold policy a run's metrics record; runs made before thresholds had
    strategies used the defaults (max F1)."""
    return {**asdict(ThresholdPolicy()), **metrics.get("threshold_policy", {})}
