"""Threshold strategies, each checked by brute force with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_curve, recall_score

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.metrics.thresholds import ThresholdPolicy, baselines, choose_threshold, costs, curve


def synthetic(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int32)
    p = np.round(np.clip(rng.normal(0.2 + 0.5 * y, 0.2), 0, 1), 3)  # rounding makes ties
    amounts = np.round(rng.lognormal(3, 1.5, n), 2)
    return y, p, amounts


def brute_cost(y: np.ndarray, p: np.ndarray, amounts: np.ndarray, t: float, review: float):
    flagged = p >= t
    fp = confusion_matrix(y, flagged, labels=[0, 1])[0, 1]
    return amounts[(y == 1) & ~flagged].sum() + review * fp


def test_curve_matches_sklearn_precision_recall_curve() -> None:
    y, p, amounts = synthetic()
    points = curve(y, p, amounts)
    precision, recall, thresholds = precision_recall_curve(y, p)
    # sklearn: ascending thresholds; ours: descending, after the "flag nothing" point
    ours = {t: (pr, rc) for t, pr, rc in zip(points.thresholds[1:], points.precision[1:],
                                               points.recall[1:], strict=True)}  # fmt: skip
    for t, pr, rc in zip(thresholds, precision[:-1], recall[:-1], strict=True):
        assert ours[t] == pytest.approx((pr, rc), abs=1e-12)
    assert points.tp[0] == points.fp[0] == 0 and points.thresholds[0] > p.max()


def test_f1_strategy_is_the_brute_force_maximum() -> None:
    y, p, amounts = synthetic(1)
    best = max(f1_score(y, p >= t) for t in np.unique(p))
    chosen = choose_threshold(y, p, amounts, ThresholdPolicy("f1"))
    assert f1_score(y, p >= chosen) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_recall_strategy_is_the_highest_threshold_reaching_the_target(target: float) -> None:
    y, p, amounts = synthetic(2)
    reaching = [t for t in np.unique(p) if recall_score(y, p >= t) >= target]
    chosen = choose_threshold(y, p, amounts, ThresholdPolicy("recall", target_recall=target))
    assert chosen == max(reaching)
    assert recall_score(y, p >= chosen) >= target


@pytest.mark.parametrize("review", [0.0, 5.0, 50.0, 1e6])
def test_cost_strategy_is_the_brute_force_minimum(review: float) -> None:
    y, p, amounts = synthetic(3)
    candidates = [*np.unique(p), np.inf]  # inf: flag nothing
    best = min(brute_cost(y, p, amounts, t, review) for t in candidates)
    chosen = choose_threshold(y, p, amounts, ThresholdPolicy("cost", review_cost=review))
    assert brute_cost(y, p, amounts, chosen, review) == pytest.approx(best, abs=1e-6)


def test_prohibitive_review_cost_flags_nothing() -> None:
    y, p, amounts = np.array([0, 1, 0]), np.array([0.9, 0.8, 0.1]), np.array([5.0, 10.0, 5.0])
    chosen = choose_threshold(y, p, amounts, ThresholdPolicy("cost", review_cost=11.0))
    assert chosen > p.max() and not (p >= chosen).any()
    cheap = choose_threshold(y, p, amounts, ThresholdPolicy("cost", review_cost=9.0))
    assert cheap == 0.8  # catching the 10.00 fraud is worth one 9.00 review


def test_costs_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 0])
    flagged = np.array([1, 0, 1, 1, 0])
    amounts = np.array([100.0, 40.0, 7.0, 8.0, 9.0])
    got = costs(y, flagged, amounts, review_cost=5.0)
    assert got == {
        "missed_fraud_amount": 40.0,
        "false_alarm_cost": 10.0,
        "cost": 50.0,
        "savings": 90.0,  # cost of flagging nothing (140) - 50
    }
    assert baselines(y, amounts, 5.0) == {"flag_nothing": 140.0, "flag_everything": 15.0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.floats(0, 1), st.floats(0, 5000)), min_size=1,
             max_size=40).filter(lambda rows: any(fraud for fraud, _, _ in rows)),
    st.floats(0, 100),
)  # fmt: skip
def test_cost_choice_beats_every_threshold(rows, review: float) -> None:
    y = np.array([int(fraud) for fraud, _, _ in rows])
    p = np.array([prob for _, prob, _ in rows])
    amounts = np.array([amount for _, _, amount in rows])
    chosen = choose_threshold(y, p, amounts, ThresholdPolicy("cost", review_cost=review))
    best = brute_cost(y, p, amounts, chosen, review)
    for t in [*p, np.inf]:
        assert best <= brute_cost(y, p, amounts, t, review) + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "profit"}, "threshold strategy must be one of 'f1', 'recall', 'cost'"),
        ({"target_recall": 0.0}, "target_recall must be in (0, 1]"),
        ({"target_recall": 1.5}, "target_recall must be in (0, 1]"),
        ({"review_cost": -1.0}, "review_cost must be in [0, inf]"),
        ({"review_cost": float("nan")}, "review_cost must be finite"),
    ],
)
def test_policy_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ThresholdPolicy(**kwargs)


def test_choosing_needs_a_fraud() -> None:
    with pytest.raises(DataError, match="at least one fraud"):
        choose_threshold(np.zeros(5), np.linspace(0, 1, 5), np.ones(5), ThresholdPolicy())
