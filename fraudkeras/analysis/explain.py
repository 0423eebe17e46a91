"""``fraudkeras explain``: one transaction's fraud probability and the features
pushing it up or down (:mod:`fraudkeras.analysis.attribution`), for a row of the run's
data or a transaction given as JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.analysis.attribution import explain
from fraudkeras.data.schema import FEATURES, LABEL, validate_frame
from fraudkeras.data.tables import Transactions
from fraudkeras.runs.folder import RunFolder


def explain_run(
    run_dir: Path,
    *,
    row: int | None = None,
    transaction_json: str | None = None,
    method: str = "integrated_gradients",
    data: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Explain row ``row`` of the run's data (found as :class:`RunFolder` finds it,
    or at ``data``), or the JSON transaction (one of the two)."""
    if (row is None) == (transaction_json is None):
        raise ParameterError("explain: give exactly one of row and transaction_json")
    run = RunFolder(run_dir, data=data)
    if row is not None:
        source, features, label = _data_row(run.transactions, row)
    else:
        source, features, label = (
            "transaction JSON",
            parse_transaction(transaction_json or ""),
            None,
        )
    explanation = explain(run.model, np.asarray(features), method=method)
    threshold = float(run.metrics["tuned_threshold"])
    return {
        "source": source,
        "label": label,
        "probability": explanation.probability,
        "threshold": threshold,
        "flagged": explanation.probability >= threshold,
        "logit": explanation.logit,
        "baseline_logit": explanation.baseline_logit,
        "method": method,
        "contributions": explanation.contributions,
        "values": explanation.values,
    }


def _data_row(transactions: Transactions, row: int) -> tuple[str, list[float], int | None]:
    if not 0 <= row < transactions.n_rows:
        raise ParameterError(
            f"row {row}: {transactions.origin} has {transactions.n_rows:,d} rows "
            f"(0 to {transactions.n_rows - 1})"
        )
    values = transactions.frame.row(row, named=True)
    return f"row {row} of {transactions.origin}", [values[f] for f in FEATURES], values[LABEL]


def parse_transaction(text: str) -> list[float]:
    """A JSON object with the 30 features (or ``@FILE`` holding one), checked
    like any input table."""
    source = "transaction_json"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise DataError(f"{path}: cannot read ({error.strerror})") from error
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{source}: not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise DataError(f"{source}: expected a JSON object of feature: value pairs")
    if any(isinstance(v, (list, dict)) or v is None for v in record.values()):
        raise DataError(f"{source}: every feature needs one number")
    frame = validate_frame(pl.DataFrame([record]), source=source, require_label=False)
    return [float(frame[f][0]) for f in FEATURES]


def strongest(explained: dict[str, Any], top: int) -> tuple[list[str], list[str]]:
    """The ``top`` features pushing towards fraud and towards normal, strongest first."""
    contributions: dict[str, float] = explained["contributions"]
    ranked = sorted(contributions, key=contributions.__getitem__)
    up = [f for f in reversed(ranked) if contributions[f] > 0][:top]
    down = [f for f in ranked if contributions[f] < 0][:top]
    return up, down


def with_top(explained: dict[str, Any], top: int) -> dict[str, Any]:
    """The explanation for JSON: every contribution (they sum to the logit's change),
    and the ``top`` each way as the terminal shows them."""
    up, down = strongest(explained, top)

    def entries(names: list[str]) -> list[dict[str, Any]]:
        return [{"feature": name, "value": explained["values"][name],
                 "contribution": explained["contributions"][name]} for name in names]  # fmt: skip

    return {**explained, "top": top, "towards_fraud": entries(up), "towards_normal": entries(down)}


def format_explanation(explained: dict[str, Any], *, top: int = 5) -> str:
    """The explanation as a few lines for a terminal."""
    contributions: dict[str, float] = explained["contributions"]
    up, down = strongest(explained, top)
    label = {None: "", 0: " (labelled normal)", 1: " (labelled fraud)"}[explained["label"]]
    verdict = "flagged" if explained["flagged"] else "not flagged"
    lines = [
        f"{explained['source']}{label}: fraud probability {explained['probability']:.4f}, "
        f"{verdict} at threshold {explained['threshold']:.4f}",
        f"logit {explained['logit']:+.3f} against {explained['baseline_logit']:+.3f} for an "
        f"average transaction ({explained['method'].replace('_', ' ')}, logit units; "
        f"+1 multiplies the odds of fraud by {math.e:.2f})",
    ]
    for title, names in (("towards fraud", up), ("towards normal", down)):
        lines.append(f"  pushing {title}:" + ("" if names else " none"))
        lines += [
            f"    {name:>6} = {explained['values'][name]:>12,.4f}   {contributions[name]:+.3f}"
            for name in names
        ]
    return "\n".join(lines)
