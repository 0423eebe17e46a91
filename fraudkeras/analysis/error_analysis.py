"""Where the model goes wrong on the test split, at the chosen threshold: the worst
false positives and false negatives, recall by amount band, and precision@k per
day (the daily alert-budget metric of the Fraud Detection Handbook: an analyst
team can check ``k`` alerts a day, so what matters is how many of the day's
``k`` highest-scored transactions are fraud)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core.validation import check_int

#: Amount bands (lower edges; each band runs to the next edge).
AMOUNT_BANDS = (0.0, 10.0, 50.0, 100.0, 500.0, 1000.0, math.inf)
SECONDS_PER_DAY = 86_400
DEFAULT_TOP = 10
DEFAULT_ALERTS_PER_DAY = 100


def top_errors(
    rows: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    amounts: np.ndarray,
    threshold: float,
    *,
    top: int = DEFAULT_TOP,
) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` most confident mistakes of each kind: false positives (normal
    transactions flagged) by highest probability, false negatives (frauds missed)
    by lowest. ``row`` is the transaction's position in the data file."""
    check_int("top", top, minimum=0)
    flagged = probabilities >= threshold
    false_positives = np.flatnonzero(flagged & (labels == 0))
    false_negatives = np.flatnonzero(~flagged & (labels == 1))

    def listed(indices: np.ndarray) -> list[dict[str, Any]]:
        return [
            {
                "row": int(rows[i]),
                "amount": float(amounts[i]),
                "probability": float(probabilities[i]),
            }
            for i in indices[:top]
        ]

    return {
        "false_positives": listed(false_positives[np.argsort(-probabilities[false_positives])]),
        "false_negatives": listed(false_negatives[np.argsort(probabilities[false_negatives])]),
    }


def recall_by_amount(
    labels: np.ndarray, probabilities: np.ndarray, amounts: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """Per amount band: frauds, frauds caught, recall (None without frauds), their
    amounts, and the false alarms raised in the band."""
    flagged = probabilities >= threshold
    fraud = labels == 1
    bands = []
    for low, high in itertools.pairwise(AMOUNT_BANDS):
        inside = (amounts >= low) & (amounts < high)
        frauds, caught = int((inside & fraud).sum()), int((inside & fraud & flagged).sum())
        bands.append(
            {
                "band": f"{low:g}-{high:g}" if math.isfinite(high) else f">= {low:g}",
                "transactions": int(inside.sum()),
                "frauds": frauds,
                "caught": caught,
                "recall": caught / frauds if frauds else None,
                "fraud_amount": float(amounts[inside & fraud].sum()),
                "caught_amount": float(amounts[inside & fraud & flagged].sum()),
                "false_alarms": int((inside & ~fraud & flagged).sum()),
            }
        )
    return bands


def precision_at_k_per_day(
    labels: np.ndarray,
    probabilities: np.ndarray,
    times: np.ndarray,
    *,
    k: int = DEFAULT_ALERTS_PER_DAY,
) -> list[dict[str, Any]]:
    """Per day (``Time // 86400``): of its ``k`` highest-scored transactions (all
    of them on a day with fewer), how many are fraud."""
    check_int("k", k, minimum=1)
    frame = pl.DataFrame(
        {
            "day": (np.asarray(times) // SECONDS_PER_DAY).astype(np.int64),
            "p": np.asarray(probabilities, dtype=np.float64),
            "fraud": np.asarray(labels).astype(np.int64),
        }
    )
    days = (
        frame.sort("p", descending=True, maintain_order=True)
        .group_by("day", maintain_order=True)
        .agg(
            pl.len().alias("transactions"),
            pl.col("fraud").sum().alias("frauds"),
            pl.col("fraud").head(k).sum().alias("hits"),
            pl.col("fraud").head(k).len().alias("alerts"),
        )
        .sort("day")
    )
    return [
        {**day, "precision_at_k": day["hits"] / day["alerts"], "k": k}
        for day in days.iter_rows(named=True)
    ]
