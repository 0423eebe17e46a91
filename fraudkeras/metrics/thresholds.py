"""Decision thresholds: which probability turns into an alert.

Strategies, each chosen on the validation split only:

- ``f1``: the threshold with the highest F1;
- ``recall``: the fewest alerts that still catch ``target_recall`` of the frauds
  (the highest threshold whose recall reaches the target);
- ``cost``: the lowest expected cost, where a missed fraud costs its ``Amount``
  and a false alarm costs ``review_cost``::

      cost(t)    = sum(Amount of frauds with p < t) + review_cost * #(normals with p >= t)
      savings(t) = cost(flag nothing) - cost(t)
                 = sum(Amount of frauds with p >= t) - review_cost * #(normals with p >= t)

  so a caught fraud saves its amount. (As scikit-learn's cost-sensitive learning
  example on this data set, with its fixed gains left out.) A ``chargeback_fee``
  adds a fixed cost to every missed fraud.
- ``expected-cost``: no single threshold: each transaction is flagged by its own
  expected loss (:mod:`fraudkeras.metrics.decisions`).

Everything here is NumPy on labels, probabilities and amounts: no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudkeras._core.errors import DataError
from fraudkeras._core.validation import check_choice, check_float

THRESHOLD_STRATEGIES = ("f1", "recall", "cost", "expected-cost")
DEFAULT_THRESHOLD_STRATEGY = "f1"
DEFAULT_TARGET_RECALL = 0.9
DEFAULT_REVIEW_COST = 5.0
#: what flags a transaction when no threshold was tuned
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a run picks its threshold; validated on construction."""

    strategy: str = DEFAULT_THRESHOLD_STRATEGY
    target_recall: float = DEFAULT_TARGET_RECALL
    review_cost: float = DEFAULT_REVIEW_COST
    #: a fixed cost of every missed fraud, beside its amount
    chargeback_fee: float = 0.0

    def __post_init__(self) -> None:
        check_choice("threshold strategy", self.strategy, THRESHOLD_STRATEGIES)
        check_float("target_recall", self.target_recall, low=0, high=1, low_inclusive=False)
        check_float("review_cost", self.review_cost, low=0)
        check_float("chargeback_fee", self.chargeback_fee, low=0)


@dataclass(frozen=True)
class Curve:
    """Counts at every distinct threshold, highest first: flagging ``p >= thresholds[i]``
    catches ``tp[i]`` frauds worth ``caught_amount[i]`` and raises ``fp[i]`` false alarms.

    Index 0 is "flag nothing" (a threshold just above the highest probability).
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    caught_amount: np.ndarray
    frauds: int
    fraud_amount: float

    @property
    def precision(self) -> np.ndarray:
        flagged = self.tp + self.fp
        return np.divide(self.tp, flagged, out=np.zeros(len(flagged)), where=flagged > 0)

    @property
    def recall(self) -> np.ndarray:
        return self.tp / self.frauds

    @property
    def f1(self) -> np.ndarray:
        denominator = 2 * self.tp + self.fp + (self.frauds - self.tp)
        return np.divide(
            2 * self.tp, denominator, out=np.zeros(len(self.tp)), where=denominator > 0
        )

    def cost(self, review_cost: float, chargeback_fee: float = 0.0) -> np.ndarray:
        missed = (self.fraud_amount - self.caught_amount) + chargeback_fee * (self.frauds - self.tp)
        return missed + review_cost * self.fp


def curve(labels: np.ndarray, probabilities: np.ndarray, amounts: np.ndarray) -> Curve:
    """The :class:`Curve` of one split (needs at least one fraud)."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    amount = np.asarray(amounts, dtype=np.float64).reshape(-1)
    if not len(p):
        raise DataError("a threshold curve needs at least one prediction")
    order = np.argsort(-p, kind="stable")
    p, y, amount = p[order], y[order], amount[order]
    # the last row of each run of equal probabilities: one point per distinct threshold
    ends = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tp = np.cumsum(y)[ends]
    caught = np.cumsum(amount * y)[ends]
    return Curve(
        thresholds=np.r_[np.nextafter(p[0], np.inf), p[ends]],
        tp=np.r_[0, tp],
        fp=np.r_[0, ends + 1 - tp],
        caught_amount=np.r_[0.0, caught],
        frauds=int(y.sum()),
        fraud_amount=float((amount * y).sum()),
    )


def choose_threshold(
    labels: np.ndarray, probabilities: np.ndarray, amounts: np.ndarray, policy: ThresholdPolicy
) -> float:
    """The threshold ``policy`` picks on these (validation) predictions: flag ``p >= t``."""
    points = curve(labels, probabilities, amounts)
    if points.frauds == 0:
        raise DataError("choosing a threshold needs at least one fraud (in the validation split)")
    if policy.strategy == "f1":
        f1 = points.f1
        best = int(np.flatnonzero(f1 == f1.max())[-1])  # ties: the lowest threshold
    elif policy.strategy == "recall":
        best = int(np.argmax(points.recall >= policy.target_recall - 1e-12))
    else:  # cost; expected-cost falls back to it where one threshold is needed
        cost = points.cost(policy.review_cost, policy.chargeback_fee)
        best = int(np.argmin(cost))  # ties: the fewest alerts
    return float(points.thresholds[best])


def costs(
    labels: np.ndarray,
    flagged: np.ndarray,
    amounts: np.ndarray,
    review_cost: float,
    chargeback_fee: float = 0.0,
) -> dict[str, float]:
    """Expected cost and savings (see the module docstring) of one set of alerts."""
    y = np.asarray(labels).reshape(-1) == 1
    alert = np.asarray(flagged).reshape(-1).astype(bool)
    amount = np.asarray(amounts, dtype=np.float64).reshape(-1)
    missed = float(amount[y & ~alert].sum()) + chargeback_fee * int((y & ~alert).sum())
    reviews = review_cost * int((alert & ~y).sum())
    everything = float(amount[y].sum()) + chargeback_fee * int(y.sum())
    return {
        "missed_fraud_amount": missed,
        "false_alarm_cost": reviews,
        "cost": missed + reviews,
        "savings": everything - (missed + reviews),
    }


def baselines(
    labels: np.ndarray, amounts: np.ndarray, review_cost: float, chargeback_fee: float = 0.0
) -> dict[str, float]:
    """The cost of the two trivial policies: flag nothing and flag everything."""
    y = np.asarray(labels).reshape(-1)
    none, every = np.zeros(len(y), bool), np.ones(len(y), bool)
    return {
        "flag_nothing": costs(y, none, amounts, review_cost, chargeback_fee)["cost"],
        "flag_everything": costs(y, every, amounts, review_cost, chargeback_fee)["cost"],
    }
