"""Permutation importance: how much validation PR-AUC drops when one feature's
values are shuffled. scikit-learn's ``permutation_importance`` does the work; the
model is wrapped as a fitted scikit-learn classifier so that any predict function
(any backend, any exported artifact) can be measured the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import average_precision_score

from fraudkeras._core.validation import check_int
from fraudkeras.data.schema import FEATURES

DEFAULT_REPEATS = 5

PredictFn = Callable[[np.ndarray], np.ndarray]


class PredictedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier whose ``predict_proba`` is ``predict_fn``."""

    def __init__(self, predict_fn: PredictFn) -> None:
        self.predict_fn = predict_fn
        self.classes_ = np.array([0, 1])

    def fit(self, features: np.ndarray, labels: np.ndarray) -> PredictedClassifier:
        return self  # already trained; scikit-learn's API needs the method

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        fraud = np.asarray(self.predict_fn(np.asarray(features, dtype=np.float32)))
        fraud = fraud.astype(np.float64).reshape(-1)
        return np.column_stack([1.0 - fraud, fraud])

    def predict(self, features: np.ndarray) -> np.ndarray:
        return (self.predict_proba(features)[:, 1] >= 0.5).astype(np.int32)


@dataclass(frozen=True)
class Importance:
    """PR-AUC drops per feature, in :data:`FEATURES` order: ``drops[i, r]`` is
    feature i's drop in shuffle r."""

    baseline_pr_auc: float
    drops: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.drops.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        return self.drops.std(axis=1)

    def ranking(self) -> list[dict[str, float | str]]:
        """Features from the most to the least important, with mean and spread."""
        order = np.argsort(-self.mean, kind="stable")
        return [
            {"feature": FEATURES[i], "mean_drop": float(self.mean[i]), "std": float(self.std[i])}
            for i in order
        ]


def permutation_importance(
    predict_fn: PredictFn,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> Importance:
    """Drop in PR-AUC (average precision) per shuffled feature, ``repeats`` shuffles each.

    Use it on validation data: the test split only reports.
    """
    check_int("repeats", repeats, minimum=1)
    estimator = PredictedClassifier(predict_fn)
    result = sklearn_permutation_importance(
        estimator,
        np.asarray(features, dtype=np.float32),
        np.asarray(labels),
        scoring="average_precision",
        n_repeats=repeats,
        random_state=seed,
    )
    baseline = average_precision_score(labels, estimator.predict_proba(features)[:, 1])
    return Importance(float(baseline), np.asarray(result.importances, dtype=np.float64))
