from __future__ import annotations

import math

import numpy as np
import pytest

from fraudkeras._core.errors import ParameterError
from fraudkeras.data.class_weights import class_weights

LABELS = np.array([0] * 990 + [1] * 10)


def test_balanced_is_n_over_2_n_c() -> None:
    weights = class_weights(LABELS, "balanced")
    assert weights.normal == pytest.approx(1000 / (2 * 990))
    assert weights.fraud == pytest.approx(1000 / (2 * 10))


def test_sqrt_boosts_fraud_by_the_root_of_the_ratio() -> None:
    weights = class_weights(LABELS, "sqrt")
    assert (weights.normal, weights.fraud) == (1.0, pytest.approx(math.sqrt(99)))


def test_none_and_explicit() -> None:
    assert (class_weights(LABELS, "none").normal, class_weights(LABELS, "none").fraud) == (1.0, 1.0)
    explicit = class_weights(LABELS, "0:1, 1:25.5")
    assert (explicit.normal, explicit.fraud, explicit.strategy) == (1.0, 25.5, "explicit")


@pytest.mark.parametrize("spec", ["heavy", "0:1,1:-2", "0:1,1:nan", "0:0,1:3", "1:3,0:1"])
def test_bad_strategies_are_rejected(spec: str) -> None:
    with pytest.raises(ParameterError, match="class"):
        class_weights(LABELS, spec)


def test_data_driven_strategy_needs_both_classes() -> None:
    with pytest.raises(ParameterError, match="needs both classes"):
        class_weights(np.zeros(10, dtype=int), "balanced")
