"""``RUN_DIR/report/``: what an analyst reads after training. ``report.md`` and
``report.html`` (the same content, images embedded) summarise the data, config,
metrics, the decision threshold and its costs, feature importance and the
model's mistakes; ``analysis.json`` holds the numbers; the PNGs the pictures.

The report is derived from the run folder alone (model, config, metrics,
history) and the run's data, so ``fraudkeras report RUN_DIR`` rebuilds it at any
time, under any backend. It is written atomically, like every other output.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core import files as rundir
from fraudkeras.analysis import error_analysis
from fraudkeras.analysis.attribution import attributions
from fraudkeras.analysis.evaluation import RunPredictions, recorded_policy
from fraudkeras.analysis.importance import DEFAULT_REPEATS, permutation_importance
from fraudkeras.data.schema import FEATURES
from fraudkeras.metrics.thresholds import curve
from fraudkeras.modeling.model import predict

REPORT_DIR = "report"
REPORT_MD, REPORT_HTML, ANALYSIS_JSON = "report.md", "report.html", "analysis.json"
PLOTS = {
    "pr_curve": "pr_curve.png",
    "roc_curve": "roc_curve.png",
    "confusion": "confusion_matrix.png",
    "history": "history.png",
    "thresholds": "thresholds.png",
    "importance": "importance.png",
}
#: the rows of the metrics table: (label, key in at_threshold's result, format)
METRIC_ROWS = (
    ("precision", "precision", "{:.4f}"),
    ("recall", "recall", "{:.4f}"),
    ("F1", "f1", "{:.4f}"),
    ("true positives (frauds caught)", "tp", "{:,d}"),
    ("false positives (false alarms)", "fp", "{:,d}"),
    ("false negatives (frauds missed)", "fn", "{:,d}"),
    ("true negatives", "tn", "{:,d}"),
    ("missed fraud amount", "missed_fraud_amount", "{:,.2f}"),
    ("false-alarm review cost", "false_alarm_cost", "{:,.2f}"),
    ("expected cost", "cost", "{:,.2f}"),
    ("savings vs flagging nothing", "savings", "{:,.2f}"),
)


# -- a tiny document model, rendered to Markdown and to HTML --------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    file: str
    alt: str


Block = Heading | Paragraph | Table | Image


def to_markdown(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{block.alt}]({block.file})")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Iterable[Block], folder: Path, title: str) -> str:
    """A single self-contained page: images are embedded as data URIs."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            data = base64.b64encode((folder / block.file).read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">')
    style = (
        "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
        "padding:.25rem .5rem;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>\n"
        f"<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# -- the analysis ----------------------------------------------------------------


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    plots: bool = True,
    force: bool = False,
    repeats: int = DEFAULT_REPEATS,
    top: int = error_analysis.DEFAULT_TOP,
    alerts_per_day: int = error_analysis.DEFAULT_ALERTS_PER_DAY,
) -> Path:
    """Write ``RUN_DIR/report/`` under the active backend; return its path.

    ``plots=False`` skips matplotlib (the report then has tables only).
    Importance is measured on the validation split (``repeats`` shuffles per
    feature); errors are listed on the test split at the run's chosen threshold.
    """
    run = RunPredictions.load(run_dir)
    metrics = rundir.read_json(run.folder / rundir.METRICS_FILE)
    history = rundir.read_json(run.folder / rundir.HISTORY_FILE)
    analysis = analyse(run, metrics, repeats=repeats, top=top, alerts_per_day=alerts_per_day)
    target = run.folder / REPORT_DIR
    with rundir.atomic_dir(target, force=force) as scratch:
        images = _draw(scratch, run, metrics, history, analysis) if plots else {}
        blocks = _document(run, metrics, analysis, images)
        rundir.write_json(scratch / ANALYSIS_JSON, analysis)
        (scratch / REPORT_MD).write_text(to_markdown(blocks))
        (scratch / REPORT_HTML).write_text(to_html(blocks, scratch, f"Report: {run.folder.name}"))
    return target


def analyse(
    run: RunPredictions, metrics: dict[str, Any], *, repeats: int, top: int, alerts_per_day: int
) -> dict[str, Any]:
    """The report's numbers (also written as ``analysis.json``)."""
    threshold = float(metrics["tuned_threshold"])
    test, part = run.test, run.parts.test
    importance = permutation_importance(
        lambda x: predict(run.model, x), run.parts.validation.x, run.parts.validation.y,
        repeats=repeats, seed=run.config.get("seed", 0),
    )  # fmt: skip
    errors = error_analysis.top_errors(
        part.rows, test.labels, test.probabilities, test.amounts, threshold, top=top
    )
    _add_reasons(run, errors)
    return {
        "threshold": threshold,
        "threshold_policy": recorded_policy(metrics),
        "importance": {
            "split": "validation",
            "repeats": repeats,
            "baseline_pr_auc": importance.baseline_pr_auc,
            "features": importance.ranking(),
        },
        "errors": errors,
        "recall_by_amount": error_analysis.recall_by_amount(
            test.labels, test.probabilities, test.amounts, threshold
        ),
        "precision_at_k_per_day": error_analysis.precision_at_k_per_day(
            test.labels, test.probabilities, part.x[:, FEATURES.index("Time")], k=alerts_per_day
        ),
    }


def _add_reasons(run: RunPredictions, errors: dict[str, list[dict[str, Any]]]) -> None:
    """For each listed mistake, the two features that pushed it the wrong way
    (up for a false alarm, down for a missed fraud), by integrated gradients."""
    position = {int(row): i for i, row in enumerate(run.parts.test.rows)}
    for kind, sign in (("false_positives", 1.0), ("false_negatives", -1.0)):
        listed = errors[kind]
        if not listed:
            continue
        x = run.parts.test.x[[position[item["row"]] for item in listed]]
        for item, contributions in zip(listed, attributions(run.model, x), strict=True):
            order = np.argsort(-sign * contributions)[:2]
            item["pushed_by"] = [
                {"feature": FEATURES[i], "logit": float(contributions[i])} for i in order
            ]


def _draw(
    folder: Path,
    run: RunPredictions,
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
    return PLOTS


def _document(
    run: RunPredictions, metrics: dict[str, Any], analysis: dict[str, Any], images: dict[str, str]
) -> list[Block]:
    test = metrics["test"]
    policy = analysis["threshold_policy"]
    summary = rundir.read_json(run.folder / rundir.DATA_FILE)
    blocks: list[Block] = [
        Heading(f"Fraud detection report: {run.folder.name}", 1),
        Paragraph(
            f"FraudMLP trained under {metrics['backend']} for {metrics['epochs_run']} epochs "
            f"(best epoch {metrics['best_epoch']}, {metrics['train_seconds']:.1f} s) on "
            f"{summary['origin']}: {summary['split']['train']['rows']:,d} training, "
            f"{summary['split']['validation']['rows']:,d} validation and "
            f"{summary['split']['test']['rows']:,d} test rows ({run.parts.kind} split). "
            "Thresholds and importance come from the validation split; every other number "
            "is measured on the test split."
        ),
        Heading("Configuration"),
        Table(("setting", "value"), tuple((k, str(v)) for k, v in run.config.items())),
        Heading("Test metrics"),
        Paragraph(
            f"PR-AUC (average precision) {test['pr_auc']:.4f}, ROC-AUC {test['roc_auc']:.4f}; "
            f"{test['rows']:,d} transactions, {test['frauds']:,d} frauds."
        ),
        Table(
            ("metric", "@ 0.5", f"@ chosen threshold {analysis['threshold']:.4f}"),
            tuple(
                (label, fmt.format(test["at_0.5"][key]), fmt.format(test["at_tuned"][key]))
                for label, key, fmt in METRIC_ROWS
                if key in test["at_tuned"]
            ),
        ),
        Heading("Decision threshold"),
        Paragraph(_policy_text(policy, analysis["threshold"])),
    ]
    if "baseline_costs" in test:
        base = test["baseline_costs"]
        blocks.append(
            Table(
                ("policy (test split)", "expected cost"),
                (
                    ("flag nothing", f"{base['flag_nothing']:,.2f}"),
                    ("flag everything", f"{base['flag_everything']:,.2f}"),
                    ("flag at 0.5", f"{test['at_0.5']['cost']:,.2f}"),
                    (f"flag at {analysis['threshold']:.4f}", f"{test['at_tuned']['cost']:,.2f}"),
                ),
            )
        )
    blocks += _images(images, ("thresholds", "pr_curve", "roc_curve", "confusion"))
    blocks += [Heading("Training history"), *_images(images, ("history",))]
    blocks += _importance_blocks(analysis["importance"], images)
    blocks += _error_blocks(analysis)
    return blocks


def _policy_text(policy: dict[str, Any], threshold: float) -> str:
    strategy = policy["strategy"]
    chosen = {
        "f1": "the highest F1",
        "recall": f"the fewest alerts that catch at least {policy['target_recall']:.0%} "
        "of the frauds",
        "cost": "the lowest expected cost",
    }[strategy]
    return (
        f"Strategy '{strategy}': threshold {threshold:.4f}, chosen on the validation split as "
        f"{chosen}. A transaction is flagged when its fraud probability is at least the "
        f"threshold. Expected cost = missed fraud amount + {policy['review_cost']:g} "
        "per false alarm; savings = cost of flagging nothing - cost."
    )


def _images(images: dict[str, str], names: tuple[str, ...]) -> list[Block]:
    return [Image(images[name], name.replace("_", " ")) for name in names if name in images]


def _importance_blocks(importance: dict[str, Any], images: dict[str, str]) -> list[Block]:
    return [
        Heading("Feature importance"),
        Paragraph(
            f"Drop in validation PR-AUC (baseline {importance['baseline_pr_auc']:.4f}) when one "
            f"feature is shuffled, mean and standard deviation over {importance['repeats']} "
            "shuffles (scikit-learn permutation_importance). Ten most important:"
        ),
        Table(
            ("feature", "mean drop", "std"),
            tuple(
                (row["feature"], f"{row['mean_drop']:.4f}", f"{row['std']:.4f}")
                for row in importance["features"][:10]
            ),
        ),
        *_images(images, ("importance",)),
    ]


def _error_blocks(analysis: dict[str, Any]) -> list[Block]:
    def mistakes(kind: str) -> Table:
        return Table(
            ("row", "amount", "fraud probability", "pushed by (logit)"),
            tuple(
                (
                    str(item["row"]),
                    f"{item['amount']:,.2f}",
                    f"{item['probability']:.4f}",
                    ", ".join(f"{r['feature']} {r['logit']:+.2f}" for r in item["pushed_by"]),
                )
                for item in analysis["errors"][kind]
            ),
        )

    days = analysis["precision_at_k_per_day"]
    k = days[0]["k"] if days else error_analysis.DEFAULT_ALERTS_PER_DAY
    return [
        Heading("Error analysis"),
        Paragraph(
            "Most confident false positives (normal transactions flagged). 'row' is the "
            "transaction's position in the data file; 'pushed by' names the features that "
            "raised its score most (integrated gradients, logit units)."
        ),
        mistakes("false_positives"),
        Paragraph("Most confident false negatives (frauds missed) and what lowered their score."),
        mistakes("false_negatives"),
        Heading("Recall by amount band", 3),
        Table(
            (
                "amount",
                "transactions",
                "frauds",
                "caught",
                "recall",
                "missed amount",
                "false alarms",
            ),
            tuple(
                (
                    band["band"],
                    f"{band['transactions']:,d}",
                    str(band["frauds"]),
                    str(band["caught"]),
                    "n/a" if band["recall"] is None else f"{band['recall']:.3f}",
                    f"{band['fraud_amount'] - band['caught_amount']:,.2f}",
                    str(band["false_alarms"]),
                )
                for band in analysis["recall_by_amount"]
            ),
        ),
        Heading(f"Precision@{k} per day", 3),
        Paragraph(
            f"Of each day's {k} highest-scored test transactions (day = Time // 86400), the "
            "share that is fraud: the daily alert-budget metric."
        ),
        Table(
            ("day", "transactions", "frauds", "alerts", "frauds in alerts", f"precision@{k}"),
            tuple(
                (
                    str(day["day"]),
                    f"{day['transactions']:,d}",
                    str(day["frauds"]),
                    str(day["alerts"]),
                    str(day["hits"]),
                    f"{day['precision_at_k']:.3f}",
                )
                for day in days
            ),
        ),
    ]
