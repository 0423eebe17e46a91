"""What turns a fraud probability into an alert: one object, used by training,
``threshold``, ``score`` (local and Spark), serving and the report.

Two rules:

- ``threshold``: flag ``p >= threshold`` (the ``f1``, ``recall`` and ``cost``
  strategies of :mod:`fraudkeras.metrics.thresholds` choose that threshold);
- ``expected-cost``: flag a transaction when letting it pass is expected to cost
  more than reviewing it. Letting it pass loses ``p x (Amount + chargeback_fee)``
  (its **expected loss**); reviewing costs ``review_cost`` when the alert is false,
  ``(1 - p) x review_cost`` expected. Flagging exactly when

      p x (Amount + chargeback_fee) > (1 - p) x review_cost

  minimises the expected value of the cost every report measures (missed fraud
  amount and fees + ``review_cost`` per false alarm; Bayes minimum risk), row by
  row, so with calibrated probabilities no single threshold does better on
  average: a missed fraud costs its amount, so the right threshold differs with
  each transaction's amount. For amounts far above the review cost the rule is
  ``p x Amount > review_cost``.

NumPy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fraudkeras._core.validation import check_choice, check_float
from fraudkeras.metrics.thresholds import (
    DEFAULT_REVIEW_COST,
    DEFAULT_THRESHOLD,
    ThresholdPolicy,
    choose_threshold,
    costs,
    curve,
)

DECISION_RULES = ("threshold", "expected-cost")
#: the strategy of :class:`ThresholdPolicy` that decides by expected cost
EXPECTED_COST = "expected-cost"


@dataclass(frozen=True)
class Decision:
    """A rule that flags transactions; validated on construction.

    ``threshold`` is the rule itself for ``rule="threshold"``; for
    ``expected-cost`` it is the best single threshold on validation, kept for
    tools that can only compare a probability (plots, error analysis)."""

    rule: str = "threshold"
    threshold: float = DEFAULT_THRESHOLD
    review_cost: float = DEFAULT_REVIEW_COST
    chargeback_fee: float = 0.0

    def __post_init__(self) -> None:
        check_choice("decision rule", self.rule, DECISION_RULES)
        check_float("threshold", self.threshold, low=0)
        check_float("review_cost", self.review_cost, low=0)
        check_float("chargeback_fee", self.chargeback_fee, low=0)

    def expected_loss(self, probabilities: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        """``p x (Amount + chargeback_fee)``: what letting each transaction pass costs,
        in expectation (a negative amount counts as 0)."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        amount = np.maximum(np.asarray(amounts, dtype=np.float64).reshape(-1), 0.0)
        loss: np.ndarray = p * (amount + self.chargeback_fee)
        return loss

    def flags(self, probabilities: np.ndarray, amounts: np.ndarray) -> np.ndarray:
        """True for each transaction the rule flags."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if self.rule == "threshold":
            flagged: np.ndarray = p >= self.threshold
            return flagged
        review: np.ndarray = (1.0 - p) * self.review_cost
        return self.expected_loss(p, amounts) > review

    def describe(self) -> str:
        """The condition that flags a transaction, in words."""
        if self.rule == "threshold":
            return f"p >= {self.threshold:.4f}"
        amount = f"(Amount + {self.chargeback_fee:g})" if self.chargeback_fee else "Amount"
        return f"p x {amount} > (1 - p) x {self.review_cost:g}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Decision:
        return cls(
            str(record.get("rule", "threshold")),
            float(record.get("threshold", DEFAULT_THRESHOLD)),
            float(record.get("review_cost", DEFAULT_REVIEW_COST)),
            float(record.get("chargeback_fee", 0.0)),
        )


def choose_decision(
    labels: np.ndarray, probabilities: np.ndarray, amounts: np.ndarray, policy: ThresholdPolicy
) -> Decision:
    """The decision ``policy`` makes from validation predictions."""
    if policy.strategy == EXPECTED_COST:
        best = choose_threshold(
            labels, probabilities, amounts, ThresholdPolicy("cost", review_cost=policy.review_cost,
                                                            chargeback_fee=policy.chargeback_fee)
        )  # fmt: skip
        return Decision(EXPECTED_COST, best, policy.review_cost, policy.chargeback_fee)
    threshold = choose_threshold(labels, probabilities, amounts, policy)
    return Decision("threshold", threshold, policy.review_cost, policy.chargeback_fee)


def decision_costs(
    labels: np.ndarray, probabilities: np.ndarray, amounts: np.ndarray, decision: Decision
) -> dict[str, float]:
    """The cost of ``decision`` on one labelled split beside the rules it must beat:
    flag at 0.5, the best single threshold in hindsight (chosen on this very split)
    and the expected-cost rule, all priced alike (:func:`thresholds.costs`)."""
    fee, review = decision.chargeback_fee, decision.review_cost
    amount = np.asarray(amounts, dtype=np.float64)

    def priced(flagged: np.ndarray) -> float:
        return costs(labels, flagged, amount, review, fee)["cost"]

    p = np.asarray(probabilities, dtype=np.float64)
    hindsight = float(np.min(curve(labels, p, amount).cost(review, fee)))
    expected = Decision(EXPECTED_COST, review_cost=review, chargeback_fee=fee)
    return {
        "this_decision": priced(decision.flags(p, amount)),
        "flag_at_0.5": priced(p >= DEFAULT_THRESHOLD),
        "best_single_threshold_in_hindsight": hindsight,
        "expected_cost_rule": priced(expected.flags(p, amount)),
    }
