"""The evaluation protocol's pieces, against SciPy, brute force and the package's
own ``time`` split."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fraudkeras.data.splits import split
from fraudkeras.data.tables import Transactions
from fraudkeras.metrics.protocol import (
    mean_interval,
    precision_at_k_per_period,
    prequential_folds,
    recall_at_fpr,
)
from helpers import only_backend

pytestmark = only_backend("jax")  # NumPy only: the backend changes nothing


def test_mean_interval_is_scipys_t_interval() -> None:
    values = [0.81, 0.84, 0.79, 0.86, 0.83]
    got = mean_interval(values)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert (got["low"], got["high"], got["n"]) == (pytest.approx(low), pytest.approx(high), 5)
    assert mean_interval([0.5]) == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 1}


def test_recall_at_fpr_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    p = np.round(rng.normal(0.2 + 0.3 * y, 0.15), 3)  # ties
    best = 0.0
    for t in np.unique(p):
        flagged = p >= t
        if flagged[y == 0].mean() <= 0.01:
            best = max(best, flagged[y == 1].mean())
    assert recall_at_fpr(y, p, 0.01) == pytest.approx(best)


def test_precision_at_k_per_period_by_hand() -> None:
    times = np.array([0, 10, 20, 30, 3600, 3610, 3620, 7300])
    p = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.5, 0.3])
    y = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    # hour 0: top 2 = 0.9 (fraud), 0.8 (normal) -> 1/2; hour 1: 0.6 (normal), 0.5 (fraud)
    # -> 1/2; hour 2: one transaction, a fraud -> 1
    got = precision_at_k_per_period(y, p, times, k=2, period_seconds=3600)
    assert got == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_folds_are_exactly_what_the_time_split_cuts(small_frame: pl.DataFrame) -> None:
    frame = small_frame.sort("Time")
    times = frame["Time"].to_numpy()
    folds = prequential_folds(times, test_hours=4, gap_hours=1, folds=3)
    ends = [fold.test_end_hour for fold in folds]
    assert ends == sorted(ends) and ends[-1] == pytest.approx(times.max() / 3600, abs=1e-6)
    for fold in folds:
        part = Transactions(frame[fold.rows], "test", "fold")
        parts = split(part, "time")
        sizes = (len(parts.train.y), len(parts.validation.y), len(parts.test.y))
        assert sizes == (fold.n_train, fold.n_validation, fold.n_test)
        test_hours = parts.test.times / 3600
        assert test_hours.min() >= fold.test_start_hour
        assert test_hours.max() < fold.test_end_hour
        # every transaction of the window is tested, none of the gap is used
        in_window = (times / 3600 >= fold.test_start_hour) & (times / 3600 < fold.test_end_hour)
        assert len(parts.test.y) == in_window.sum()
        assert parts.validation.times.max() / 3600 < fold.test_start_hour - fold.gap_hours
        assert parts.train.times.max() <= parts.validation.times.min()
