"""The report's sections: what the analyst reads, built from a run's metrics and
the analysis numbers as document blocks (:mod:`fraudkeras.analysis.document`)."""

from __future__ import annotations

from typing import Any

from fraudkeras._core.text import counted
from fraudkeras.analysis import error_analysis
from fraudkeras.analysis.document import Block, Heading, Image, Paragraph, Table
from fraudkeras.metrics.tables import METRIC_ROWS
from fraudkeras.runs.folder import RunFolder


def document(
    run: RunFolder, metrics: dict[str, Any], analysis: dict[str, Any], images: dict[str, str]
) -> list[Block]:
    test = metrics["test"]
    policy = analysis["threshold_policy"]
    summary = run.data_record
    blocks: list[Block] = [
        Heading(f"Fraud detection report: {run.path.name}", 1),
        Paragraph(
            f"FraudMLP trained under {metrics['backend']} for "
            f"{counted(metrics['epochs_run'], 'epoch')} "
            f"(best epoch {metrics['best_epoch']}, {metrics['train_seconds']:.1f} s) on "
            f"{summary['origin']}: {summary['split']['train']['rows']:,d} training, "
            f"{summary['split']['validation']['rows']:,d} validation and "
            f"{summary['split']['test']['rows']:,d} test rows ({run.split.kind} split). "
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
    blocks += _decision_blocks(test)
    blocks += _images(images, ("thresholds", "pr_curve", "roc_curve", "confusion"))
    blocks += _calibration_blocks(metrics.get("calibration"), images)
    blocks += [Heading("Training history"), *_images(images, ("history",))]
    blocks += _importance_blocks(analysis["importance"], images)
    blocks += _error_blocks(analysis)
    return blocks


def _policy_text(policy: dict[str, Any], threshold: float) -> str:
    strategy = policy["strategy"]
    cost = (
        f"Expected cost = missed fraud amount + {policy['review_cost']:g} per false alarm"
        + (f" + {policy['chargeback_fee']:g} per missed fraud" if policy.get("chargeback_fee")
           else "")
        + "; savings = cost of flagging nothing - cost."
    )  # fmt: skip
    if strategy == "expected-cost":
        return (
            "Strategy 'expected-cost': a transaction is flagged when its expected loss, "
            "p x (Amount + chargeback fee), exceeds the expected cost of reviewing it, "
            f"(1 - p) x {policy['review_cost']:g}; no single threshold. The threshold "
            f"{threshold:.4f} (the lowest-cost single threshold on validation) is only used "
            f"for the curves and error lists below. {cost}"
        )
    chosen = {
        "f1": "the highest F1",
        "recall": f"the fewest alerts that catch at least {policy['target_recall']:.0%} "
        "of the frauds",
        "cost": "the lowest expected cost",
    }[strategy]
    return (
        f"Strategy '{strategy}': threshold {threshold:.4f}, chosen on the validation split as "
        f"{chosen}. A transaction is flagged when its fraud probability is at least the "
        f"threshold. {cost}"
    )


def _decision_blocks(test: dict[str, Any]) -> list[Block]:
    """The run's decision priced beside the rules it must beat (runs made before
    decisions were priced have no such table)."""
    priced = test.get("decision_costs")
    if not priced:
        return []
    rows = (
        ("this run's decision", "this_decision"),
        ("flag at 0.5", "flag_at_0.5"),
        ("best single threshold, chosen on the test split in hindsight",
         "best_single_threshold_in_hindsight"),
        ("expected-cost rule: flag p x (Amount + fee) > (1 - p) x review cost",
         "expected_cost_rule"),
    )  # fmt: skip
    return [
        Paragraph("What each rule would have cost on the test split (same cost as above):"),
        Table(("rule", "cost"), tuple((label, f"{priced[key]:,.2f}") for label, key in rows)),
    ]


def _calibration_blocks(calibration: dict[str, Any] | None, images: dict[str, str]) -> list[Block]:
    """Brier score and ECE before and after the calibration map (runs made before
    calibration have no record)."""
    if calibration is None:
        return []
    rows = tuple(
        (
            f"{split}, {stage}",
            f"{calibration[split][stage]['brier']:.6f}",
            f"{calibration[split][stage]['ece']:.6f}",
        )
        for split in ("validation", "test")
        for stage in ("before", "after")
    )
    return [
        Heading("Calibration"),
        Paragraph(
            f"Map '{calibration['method']}' fitted on the validation split after training: "
            f"p = sigmoid({calibration['scale']:.4g} x logit + {calibration['bias']:.4g}) "
            f"(the class weights' prior shift alone: {calibration['prior_offset']:.4g}). It is a "
            "layer of the model, so every export outputs these probabilities. ECE: 20 "
            "equal-mass bins, sum over bins of (bin share) x |fraud rate - mean probability|."
        ),
        Table(("split, stage", "Brier score", "ECE"), rows),
        *_images(images, ("reliability",)),
    ]


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
        _amount_band_table(analysis["recall_by_amount"]),
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


def _amount_band_table(bands: list[dict[str, Any]]) -> Table:
    return Table(
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
            for band in bands
        ),
    )
