"""Metrics as text: the one list of metric rows that the terminal table, the
report and the backend comparison all print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fraudkeras.metrics.classification import recorded_policy

#: the rows of a metrics table: (label, key in at_threshold's result, format)
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
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
#: the short keys the terminal table shows
TERMINAL_KEYS = ("precision", "recall", "f1", "tp", "fp", "fn", "tn", "cost", "savings")


def lookup(record: dict[str, Any], path: Sequence[str]) -> Any:
    """``record[path[0]][path[1]]...``, or None where a key is missing."""
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def cell(value: Any, fmt: str) -> str:
    """One formatted table cell; "n/a" for a missing value."""
    return "n/a" if value is None else fmt.format(value)


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of the test metrics at 0.5 and at the chosen threshold,
    with the costs of flagging nothing and everything, for terminals and logs."""
    test = metrics["test"]
    policy = recorded_policy(metrics)
    formats = {key: fmt for _, key, fmt in METRIC_ROWS}
    chosen = test["at_tuned"]
    header = f"@ {policy['strategy']} {chosen['threshold']:.4f}"
    if lookup(metrics, ("decision", "rule")) == "expected-cost" and "at_decision" in test:
        chosen, header = test["at_decision"], "@ expected-cost rule"
    rows = [("", "@ 0.5", header)]
    for key in TERMINAL_KEYS:
        if key in chosen:
            fmt = formats[key].replace(",d", "d")
            rows.append((key, cell(test["at_0.5"][key], fmt), cell(chosen[key], fmt)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"test split: {test['rows']} rows, {test['frauds']} frauds | "
        f"PR-AUC {cell(test['pr_auc'], '{:.4f}')} | ROC-AUC {cell(test['roc_auc'], '{:.4f}')}"
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    if "baseline_costs" in test:
        lines.append(cost_line(test, policy["review_cost"]))
    if "brier" in test:
        lines.append(f"calibration: Brier {test['brier']:.6f} | ECE (20 equal-mass bins) "
                     f"{test['ece']:.6f}")  # fmt: skip
    return "\n".join(lines)


def cost_line(split: dict[str, Any], review_cost: float) -> str:
    """How the costs are counted, and what the two trivial policies cost."""
    base = split["baseline_costs"]
    return (
        f"cost = missed fraud amount + {review_cost:g} per false alarm; "
        f"flag nothing {base['flag_nothing']:,.2f}, flag everything {base['flag_everything']:,.2f}"
    )
