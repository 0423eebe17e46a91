"""Evaluating a finished run again, and choosing its threshold again."""

from __future__ import annotations

import os
from typing import Any

from fraudkeras._core.files import read_json, write_json
from fraudkeras.analysis.report import write_report
from fraudkeras.metrics.classification import evaluate_predictions, thresholds_record
from fraudkeras.metrics.thresholds import ThresholdPolicy
from fraudkeras.runs import layout
from fraudkeras.runs.folder import RunFolder


def evaluate(
    run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Re-evaluate a run folder's model on its test split, under the active backend.

    ``data`` defaults to the table the run was trained on; another table is
    accepted (it is split the run's way) with a warning. The split, seed and
    threshold policy are the run's. The result has the layout of the run's
    ``metrics.json`` plus ``data_matches``: False when the data's fingerprint
    differs from the one recorded at training time.
    """
    import keras  # here, not at the top: this module loads without Keras

    run = RunFolder(run_dir, data=data, allow_other_data=data is not None)
    metrics = evaluate_predictions(run.validation, run.test, run.train_config.threshold_policy())
    return {
        "backend": keras.backend.backend(),
        "split": run.split.kind,
        "data_matches": run.data_matches,
        **metrics,
    }


def retune(
    run_dir: str | os.PathLike[str],
    policy: ThresholdPolicy,
    *,
    data: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Choose the run's threshold again with ``policy`` (on validation) and record
    it in ``metrics.json``, ``config.json``, the export manifest if the run was
    exported, and the report if it has one. Returns the updated metrics."""
    run = RunFolder(run_dir, data=data)
    metrics = {**run.metrics, **evaluate_predictions(run.validation, run.test, policy)}
    run.update(
        metrics=metrics,
        config={
            **run.config,
            "threshold_strategy": policy.strategy,
            "target_recall": policy.target_recall,
            "review_cost": policy.review_cost,
            "chargeback_fee": policy.chargeback_fee,
        },
    )
    if run.manifest_path.is_file():
        manifest = read_json(run.manifest_path)
        manifest["thresholds"] = thresholds_record(metrics)
        manifest["test_metrics"] = metrics["test"]
        write_json(run.manifest_path, manifest)
    report = run.path / layout.REPORT_DIR
    if report.is_dir():  # keep the report in step with the threshold
        write_report(run, plots=any(report.glob("*.png")), force=True)
    return metrics
