"""An evaluation protocol that can tell two models apart.

One test PR-AUC on one split is noise-bound: the full table's stratified test
split holds ~74 frauds, one fraud moves PR-AUC by about 0.01 and seeds alone
spread it by about 0.02. So models are compared

- over repeated runs (model seeds, and for the stratified split also split seeds),
  reported as a mean with a 95 % Student-t interval (:func:`mean_interval`);
- on prequential time folds (:func:`prequential_folds`): trained on earlier
  transactions, validated on the ones just before a gap, and assessed on the
  hours after the gap, the window moved forward fold by fold (as in the Fraud
  Detection Handbook's prequential validation, with its delay period as the gap);
- on what a fraud team works with: recall at a 1 % false-positive rate
  (:func:`recall_at_fpr`) and precision of the ``k`` highest-scored transactions
  of each period (:func:`precision_at_k_per_period`).

NumPy, SciPy and scikit-learn only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve

from fraudkeras._core.errors import DataError
from fraudkeras._core.validation import check_float, check_int
from fraudkeras.data.splits import HOLDOUT_FRACTION

SECONDS_PER_HOUR = 3600.0


def mean_interval(values: list[float] | np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean and the two-sided Student-t interval of the mean of repeated runs
    (``low == high == mean`` for a single run, where no interval exists)."""
    x = np.asarray(values, dtype=np.float64)
    if not len(x):
        raise DataError("an interval needs at least one value")
    mean = float(x.mean())
    if len(x) < 2:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(x)}


def recall_at_fpr(labels: np.ndarray, probabilities: np.ndarray, fpr: float = 0.01) -> float:
    """The highest recall of any threshold whose false-positive rate is at most ``fpr``."""
    check_float("fpr", fpr, low=0, high=1)
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
    return float(true_positive_rate[false_positive_rate <= fpr].max())


def precision_at_k_per_period(
    labels: np.ndarray,
    probabilities: np.ndarray,
    times: np.ndarray,
    k: int,
    period_seconds: float = 86_400.0,
) -> float:
    """Mean over periods (``Time // period_seconds``) of the share of fraud among each
    period's ``k`` highest-scored transactions (all of a period with fewer): what ``k``
    reviewers' alerts per period would find."""
    check_int("k", k, minimum=1)
    y = np.asarray(labels).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    period = np.floor(np.asarray(times, dtype=np.float64) / period_seconds).astype(np.int64)
    shares = []
    for value in np.unique(period):
        rows = np.flatnonzero(period == value)
        top = rows[np.argsort(-p[rows], kind="stable")[:k]]
        shares.append(y[top].mean())
    return float(np.mean(shares))


@dataclass(frozen=True)
class Fold:
    """One prequential fold: row positions (into the table) sorted by time, and
    how many of them train, validate and test, in that order. Cut by the
    package's ``time`` split, these rows give exactly these three parts: the
    gap's rows are left out, so validation ends before it and test starts after."""

    rows: np.ndarray
    n_train: int
    n_validation: int
    n_test: int
    test_start_hour: float
    test_end_hour: float
    gap_hours: float


def prequential_folds(
    times: np.ndarray, *, test_hours: float, gap_hours: float, folds: int
) -> list[Fold]:
    """The last ``folds`` windows of ``test_hours`` each (the latest last), each
    preceded by a gap of ``gap_hours`` and by as many earlier transactions as the
    ``time`` split's 70/15/15 proportions give a test part of that window's size
    (the latest of them validate). Times are in seconds."""
    check_int("folds", folds, minimum=1)
    check_float("test_hours", test_hours, low=0, low_inclusive=False)
    check_float("gap_hours", gap_hours, low=0)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    order = np.argsort(t, kind="stable")
    hours = t[order] / SECONDS_PER_HOUR
    end = hours[-1] + 1e-9
    found = []
    for back in range(folds, 0, -1):
        start = end - back * test_hours
        first_test = int(np.searchsorted(hours, start, side="left"))
        last_test = int(np.searchsorted(hours, start + test_hours, side="left"))
        before_gap = int(np.searchsorted(hours, start - gap_hours, side="left"))
        n_test = last_test - first_test
        total = _total_for_test(n_test)
        n_rest = math.ceil(total * HOLDOUT_FRACTION)
        n_validation, n_train = n_rest - n_test, total - n_rest
        if n_test == 0 or before_gap < n_train + n_validation:
            raise DataError(
                f"fold ending at hour {start + test_hours:.1f}: not enough earlier "
                f"transactions for a test window of {test_hours:g} h and a gap of {gap_hours:g} h"
            )
        kept = np.r_[order[before_gap - n_train - n_validation : before_gap],
                     order[first_test:last_test]]  # fmt: skip
        found.append(
            Fold(kept, n_train, n_validation, n_test, start, start + test_hours, gap_hours)
        )
    return found


def _total_for_test(n_test: int) -> int:
    """The smallest table size whose ``time`` split has a test part of ``n_test`` rows
    (the split takes ``ceil(0.3 n)`` rows out, half of them, rounded up, to test)."""
    total = max(1, int(n_test / (HOLDOUT_FRACTION / 2)) - 2)
    while math.ceil(math.ceil(total * HOLDOUT_FRACTION) * 0.5) < n_test:
        total += 1
    return total
