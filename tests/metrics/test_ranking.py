"""The per-epoch AUCs against scikit-learn's, the reference, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudkeras.data.schema import FEATURES
from fraudkeras.data.tables import Transactions
from fraudkeras.metrics.ranking import average_precision_roc_auc


def sklearn_aucs(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    return average_precision_score(labels, scores), roc_auc_score(labels, scores)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=300))
def test_matches_sklearn_with_many_ties(rows: list[tuple[bool, int]]) -> None:
    labels = np.array([label for label, _ in rows], dtype=np.int32)
    scores = np.array([level / 5 for _, level in rows])  # six distinct scores at most
    got = average_precision_roc_auc(labels, scores)
    if labels.min() == labels.max():
        assert got is None
    else:
        assert got == pytest.approx(sklearn_aucs(labels, scores), abs=1e-12, rel=0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5000), st.floats(0.001, 0.5))
def test_matches_sklearn_on_rare_positives(seed: int, n: int, rate: float) -> None:
    """Frauds are rare; scores rounded to 0-4 decimals tie to a varying degree."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < rate).astype(np.float32)
    labels[:2] = (0, 1)
    scores = np.round(rng.random(n) ** (1 + 5 * (1 - labels)), int(rng.integers(0, 5)))
    got = average_precision_roc_auc(labels, scores)
    assert got == pytest.approx(sklearn_aucs(labels, scores), abs=1e-12, rel=0)


def test_matches_sklearn_on_real_columns(sample: Transactions) -> None:
    """The sample's labels ranked by single columns: Amount's many ties, V14, Time."""
    labels, features = sample.labels(), sample.features()
    for name, sign in (("Amount", 1), ("V14", -1), ("V17", -1), ("Time", 1)):
        scores = sign * features[:, FEATURES.index(name)]
        got = average_precision_roc_auc(labels, scores)
        assert got == pytest.approx(sklearn_aucs(labels, scores), abs=1e-12, rel=0), name


def test_saturated_probabilities_tie() -> None:
    """Probabilities of 1.0 (a float64 sigmoid of logits above ~37) are one threshold."""
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    scores = np.array([1.0, 1.0, 1.0, 0.3, 0.3, 0.1, 0.05, 0.0])
    assert average_precision_roc_auc(labels, scores) == pytest.approx(
        sklearn_aucs(labels, scores), abs=1e-12, rel=0
    )


def test_one_class_is_undefined() -> None:
    scores = np.array([0.1, 0.5, 0.9])
    assert average_precision_roc_auc(np.zeros(3), scores) is None
    assert average_precision_roc_auc(np.ones(3), scores) is None
    assert average_precision_roc_auc(np.zeros(0), np.zeros(0)) is None
