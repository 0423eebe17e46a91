"""Error analysis, checked against plain loops and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from fraudkeras._core.errors import ParameterError
from fraudkeras.analysis.error_analysis import (
    AMOUNT_BANDS,
    precision_at_k_per_day,
    recall_by_amount,
    top_errors,
)


def synthetic(seed: int = 0, n: int = 4000):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int32)
    p = np.clip(rng.normal(0.2 + 0.5 * y, 0.25), 0, 1)
    amounts = np.round(rng.lognormal(3.5, 1.5, n), 2)
    times = rng.uniform(0, 3 * 86_400, n)
    return y, p, amounts, times


def test_top_errors_are_the_most_confident_mistakes() -> None:
    y, p, amounts, _ = synthetic()
    rows = np.arange(len(y)) + 1000  # positions in a larger file
    got = top_errors(rows, y, p, amounts, 0.5, top=5)
    fp = [i for i in np.argsort(-p) if y[i] == 0 and p[i] >= 0.5][:5]
    fn = [i for i in np.argsort(p) if y[i] == 1 and p[i] < 0.5][:5]
    assert [e["row"] for e in got["false_positives"]] == [int(rows[i]) for i in fp]
    assert [e["row"] for e in got["false_negatives"]] == [int(rows[i]) for i in fn]
    assert got["false_positives"][0] == {
        "row": int(rows[fp[0]]), "amount": amounts[fp[0]], "probability": p[fp[0]],
    }  # fmt: skip


def test_recall_by_amount_matches_sklearn_per_band() -> None:
    y, p, amounts, _ = synthetic(1)
    bands = recall_by_amount(y, p, amounts, 0.45)
    assert len(bands) == len(AMOUNT_BANDS) - 1
    assert sum(b["transactions"] for b in bands) == len(y)
    for band, low, high in zip(bands, AMOUNT_BANDS[:-1], AMOUNT_BANDS[1:], strict=True):
        inside = (amounts >= low) & (amounts < high)
        assert band["frauds"] == int(y[inside].sum())
        if band["frauds"]:
            assert band["recall"] == pytest.approx(recall_score(y[inside], p[inside] >= 0.45))
        assert band["false_alarms"] == int(((p >= 0.45) & (y == 0) & inside).sum())


def test_precision_at_k_per_day_matches_a_plain_loop() -> None:
    y, p, _, times = synthetic(2)
    k = 50
    got = precision_at_k_per_day(y, p, times, k=k)
    days = np.floor(times / 86_400).astype(int)
    assert [d["day"] for d in got] == sorted(set(days))
    for day in got:
        on_day = days == day["day"]
        top = np.argsort(-p[on_day], kind="stable")[:k]
        expected = y[on_day][top].mean()
        assert day["precision_at_k"] == pytest.approx(expected)
        assert day["precision_at_k"] == pytest.approx(
            precision_score(y[on_day][top], np.ones(len(top))), abs=1e-12
        )
        assert (day["transactions"], day["alerts"]) == (int(on_day.sum()), k)


def test_a_day_with_fewer_transactions_than_k_counts_them_all() -> None:
    got = precision_at_k_per_day(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.1]),
                                 np.array([10.0, 20.0, 90_000.0]), k=100)  # fmt: skip
    assert [(d["day"], d["alerts"], d["hits"], d["precision_at_k"]) for d in got] == [
        (0, 2, 1, 0.5),
        (1, 1, 1, 1.0),
    ]


def test_bad_k_and_top_are_refused() -> None:
    y, p, amounts, times = synthetic(3, n=10)
    with pytest.raises(ParameterError, match="k must be >= 1, got 0"):
        precision_at_k_per_day(y, p, times, k=0)
    with pytest.raises(ParameterError, match="top must be >= 0, got -1"):
        top_errors(np.arange(10), y, p, amounts, 0.5, top=-1)
