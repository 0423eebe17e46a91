"""The expected-cost decision, checked by hand and by brute force over thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from fraudkeras._core.errors import ParameterError
from fraudkeras.metrics.decisions import Decision, choose_decision, decision_costs
from fraudkeras.metrics.thresholds import ThresholdPolicy, choose_threshold
from helpers import only_backend

pytestmark = only_backend("jax")  # NumPy only: the backend changes nothing


def synthetic(seed: int = 0, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probabilities (labels drawn from them) and lognormal amounts."""
    rng = np.random.default_rng(seed)
    p = np.clip(rng.beta(0.3, 20.0, n), 0, 1)
    y = (rng.random(n) < p).astype(np.int64)
    amounts = np.round(rng.lognormal(3.5, 1.4, n), 2)
    return y, p, amounts


def realised_cost(y, flagged, amounts, review: float, fee: float) -> float:
    """Missed fraud amount and fees + review cost per false alarm, from sklearn's confusion."""
    flagged = np.asarray(flagged, bool)
    fp = confusion_matrix(y, flagged, labels=[0, 1])[0, 1]
    missed = (y == 1) & ~flagged
    return float(amounts[missed].sum() + fee * missed.sum() + review * fp)


def expected_cost(p, flagged, amounts, review: float, fee: float) -> float:
    """The expectation of that cost when each label is drawn from its p."""
    flagged = np.asarray(flagged, bool)
    return float(np.sum(np.where(flagged, (1 - p) * review, p * (amounts + fee))))


def test_rule_flags_where_passing_costs_more_than_reviewing() -> None:
    p = np.array([0.01, 0.01, 0.5, 0.2, 0.0, 1.0])
    amounts = np.array([400.0, 600.0, 4.0, 30.0, 1e6, 0.0])
    decision = Decision("expected-cost", review_cost=5.0, chargeback_fee=1.0)
    # p * (A + 1) against (1 - p) * 5, row by row
    hand = [0.01 * 401 > 0.99 * 5, 0.01 * 601 > 0.99 * 5, 0.5 * 5 > 0.5 * 5, 0.2 * 31 > 0.8 * 5,
            False, 1.0 * 1 > 0.0]  # fmt: skip
    assert decision.flags(p, amounts).tolist() == hand == [False, True, False, True, False, True]
    np.testing.assert_allclose(decision.expected_loss(p, amounts), p * (amounts + 1.0))
    assert Decision("threshold", 0.2).flags(p, amounts).tolist() == [p_ >= 0.2 for p_ in p]


@pytest.mark.parametrize(("review", "fee"), [(5.0, 0.0), (25.0, 10.0), (0.5, 0.0)])
def test_rule_has_the_lowest_expected_cost_of_any_threshold(review: float, fee: float) -> None:
    """Bayes minimum risk: row by row it picks the cheaper action, so no threshold beats it."""
    _, p, amounts = synthetic()
    rule = Decision("expected-cost", review_cost=review, chargeback_fee=fee)
    best = expected_cost(p, rule.flags(p, amounts), amounts, review, fee)
    for t in [*np.unique(p), np.inf]:
        assert best <= expected_cost(p, p >= t, amounts, review, fee) + 1e-9


def test_costs_beside_the_rules_it_must_beat() -> None:
    y, p, amounts = synthetic(1)
    decision = Decision("threshold", 0.3, review_cost=5.0, chargeback_fee=2.0)
    got = decision_costs(y, p, amounts, decision)
    assert got["this_decision"] == pytest.approx(realised_cost(y, p >= 0.3, amounts, 5.0, 2.0))
    assert got["flag_at_0.5"] == pytest.approx(realised_cost(y, p >= 0.5, amounts, 5.0, 2.0))
    fraud = y == 1

    def plain_cost(flagged: np.ndarray) -> float:  # the same cost without sklearn, for speed
        missed = fraud & ~flagged
        return amounts[missed].sum() + 2.0 * missed.sum() + 5.0 * (flagged & ~fraud).sum()

    brute = min(plain_cost(p >= t) for t in [*np.unique(p), np.inf])
    assert got["best_single_threshold_in_hindsight"] == pytest.approx(brute)
    rule = p * (amounts + 2.0) > (1 - p) * 5.0
    assert got["expected_cost_rule"] == pytest.approx(realised_cost(y, rule, amounts, 5.0, 2.0))


def test_expected_cost_strategy_keeps_the_cost_threshold_as_its_stand_in() -> None:
    y, p, amounts = synthetic(2)
    policy = ThresholdPolicy("expected-cost", review_cost=7.0, chargeback_fee=3.0)
    decision = choose_decision(y, p, amounts, policy)
    assert (decision.rule, decision.review_cost, decision.chargeback_fee) == (
        "expected-cost", 7.0, 3.0,
    )  # fmt: skip
    cost = ThresholdPolicy("cost", review_cost=7.0, chargeback_fee=3.0)
    assert decision.threshold == choose_threshold(y, p, amounts, cost)
    assert Decision.from_dict(decision.as_dict()) == decision


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "profit"}, "decision rule must be one of"),
        ({"review_cost": -1.0}, "review_cost must be in"),
        ({"chargeback_fee": float("nan")}, "chargeback_fee must be finite"),
    ],
)
def test_decision_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        Decision(**kwargs)
