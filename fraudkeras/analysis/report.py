"""``RUN_DIR/report/``: what an analyst reads after training. ``report.md`` and
``report.html`` (the same content, images embedded) summarise the data, config,
metrics, the decision threshold and its costs, feature importance and the
model's mistakes; ``analysis.json`` holds the numbers; the PNGs the pictures.

The report is derived from the run folder alone (model, config, metrics,
history) and the run's data, so ``fraudkeras report RUN_DIR`` rebuilds it at any
time, under any backend. It is written atomically, like every other output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core.files import atomic_dir, write_json
from fraudkeras.analysis import error_analysis
from fraudkeras.analysis.attribution import attributions
from fraudkeras.analysis.document import to_html, to_markdown
from fraudkeras.analysis.importance import DEFAULT_REPEATS, permutation_importance
from fraudkeras.analysis.report_sections import document
from fraudkeras.data.schema import FEATURES
from fraudkeras.metrics.classification import recorded_policy
from fraudkeras.metrics.thresholds import curve
from fraudkeras.modeling.model import fraud_probabilities
from fraudkeras.runs import layout
from fraudkeras.runs.folder import RunFolder

REPORT_MD, REPORT_HTML, ANALYSIS_JSON = "report.md", "report.html", "analysis.json"
PLOTS = {
    "pr_curve": "pr_curve.png",
    "roc_curve": "roc_curve.png",
    "confusion": "confusion_matrix.png",
    "history": "history.png",
    "thresholds": "thresholds.png",
    "importance": "importance.png",
    "reliability": "reliability.png",
}


def write_report(
    run_dir: str | os.PathLike[str] | RunFolder,
    *,
    data: str | os.PathLike[str] | None = None,
    plots: bool = True,
    force: bool = False,
    repeats: int = DEFAULT_REPEATS,
    top: int = error_analysis.DEFAULT_TOP,
    alerts_per_day: int = error_analysis.DEFAULT_ALERTS_PER_DAY,
) -> Path:
    """Write ``RUN_DIR/report/`` under the active backend; return its path.

    ``plots=False`` skips matplotlib (the report then has tables only).
    Importance is measured on the validation split (``repeats`` shuffles per
    feature; a streamed run's bounded sample of it); errors are listed on the
    test split at the run's chosen threshold.
    ``run_dir`` may be a :class:`RunFolder` already holding the split and model
    (training passes its own, so nothing is loaded twice); ``data`` says where
    the run's data is now.
    """
    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir, data=data)
    metrics, history = run.metrics, run.history
    analysis = analyse(run, metrics, repeats=repeats, top=top, alerts_per_day=alerts_per_day)
    target = run.path / layout.REPORT_DIR
    with atomic_dir(target, force=force) as scratch:
        images = _draw(scratch, run, metrics, history, analysis) if plots else {}
        blocks = document(run, metrics, analysis, images)
        write_json(scratch / ANALYSIS_JSON, analysis)
        (scratch / REPORT_MD).write_text(to_markdown(blocks))
        (scratch / REPORT_HTML).write_text(to_html(blocks, scratch, f"Report: {run.path.name}"))
    return target


def analyse(
    run: RunFolder, metrics: dict[str, Any], *, repeats: int, top: int, alerts_per_day: int
) -> dict[str, Any]:
    """The report's numbers (also written as ``analysis.json``)."""
    threshold = float(metrics["tuned_threshold"])
    test = run.test
    assert test.rows is not None and test.times is not None  # RunFolder's predictions have them
    importance = permutation_importance(
        lambda x: fraud_probabilities(run.model, x), run.split.validation.x, run.split.validation.y,
        repeats=repeats, seed=run.config.get("seed", 0),
    )  # fmt: skip
    errors = error_analysis.top_errors(
        test.rows, test.labels, test.probabilities, test.amounts, threshold, top=top
    )
    _add_reasons(run, errors)
    return {
        "threshold": threshold,
        "threshold_policy": recorded_policy(metrics),
        "importance": {
            "split": "validation",
            "rows": len(run.split.validation.y),  # a streamed run's: a bounded sample
            "repeats": repeats,
            "baseline_pr_auc": importance.baseline_pr_auc,
            "features": importance.ranking(),
        },
        "errors": errors,
        "recall_by_amount": error_analysis.recall_by_amount(
            test.labels, test.probabilities, test.amounts, threshold
        ),
        "precision_at_k_per_day": error_analysis.precision_at_k_per_day(
            test.labels, test.probabilities, test.times, k=alerts_per_day
        ),
    }


def _add_reasons(run: RunFolder, errors: dict[str, list[dict[str, Any]]]) -> None:
    """For each listed mistake, the two features that pushed it the wrong way
    (up for a false alarm, down for a missed fraud), by integrated gradients."""
    for kind, sign in (("false_positives", 1.0), ("false_negatives", -1.0)):
        listed = errors[kind]
        if not listed:
            continue
        x = run.features_of(np.array([item["row"] for item in listed], np.int64))
        for item, contributions in zip(listed, attributions(run.model, x), strict=True):
            order = np.argsort(-sign * contributions)[:2]
            item["pushed_by"] = [
                {"feature": FEATURES[i], "logit": float(contributions[i])} for i in order
            ]


def _draw(
    folder: Path,
    run: RunFolder,
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    analysis: dict[str, Any],
) -> dict[str, str]:
    from fraudkeras.analysis import plots

    threshold = analysis["threshold"]
    y, p = run.test.labels, run.test.probabilities
    plots.pr_curve(y, p, threshold, folder / PLOTS["pr_curve"])
    plots.roc_curve(y, p, threshold, folder / PLOTS["roc_curve"])
    plots.confusion(y, p, threshold, folder / PLOTS["confusion"])
    plots.history(history, int(metrics["best_epoch"]), folder / PLOTS["history"])
    validation = run.validation
    plots.threshold_curves(
        curve(validation.labels, validation.probabilities, validation.amounts),
        float(analysis["threshold_policy"]["review_cost"]),
        threshold,
        folder / PLOTS["thresholds"],
    )
    plots.importance(analysis["importance"]["features"], folder / PLOTS["importance"])
    drawn = dict(PLOTS)
    calibration = metrics.get("calibration")
    if calibration is not None:  # runs made before calibration have none
        test = calibration["test"]
        bins = {"before calibration": test["before"]["reliability"]}
        if calibration["method"] != "none":
            bins[f"after ({calibration['method']})"] = test["after"]["reliability"]
        plots.reliability(bins, folder / PLOTS["reliability"])
    else:
        del drawn["reliability"]
    return drawn
