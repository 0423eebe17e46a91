"""Permutation importance: scikit-learn's, on any predict function."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import average_precision_score

from fraudkeras._core.errors import ParameterError
from fraudkeras.analysis.importance import PredictedClassifier, permutation_importance
from fraudkeras.data.schema import FEATURES

V14 = FEATURES.index("V14")


def test_only_the_feature_a_model_reads_matters(small) -> None:
    x, y = small.features(), small.labels()
    result = permutation_importance(lambda f: expit(-f[:, V14]), x, y, repeats=3, seed=0)
    assert result.drops.shape == (len(FEATURES), 3)
    assert result.baseline_pr_auc == pytest.approx(average_precision_score(y, expit(-x[:, V14])))
    others = np.delete(result.drops, V14, axis=0)
    assert np.all(others == 0.0)
    assert result.mean[V14] > 0.3 and result.std[V14] >= 0
    assert result.ranking()[0]["feature"] == "V14"


def test_a_feature_cut_out_of_the_trained_model_has_no_importance(trained_run) -> None:
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    model = load_model(trained_run.run_dir / "model.keras")
    kernel = np.array(model.hidden[0].kernel)
    amount = FEATURES.index("Amount")
    kernel[-1, :] = 0.0  # the first layer no longer reads Amount (its last input, any transform)
    model.hidden[0].kernel.assign(kernel)
    validation = trained_run.split.validation
    result = permutation_importance(
        lambda f: fraud_probabilities(model, f), validation.x, validation.y, repeats=2, seed=1
    )
    assert np.all(result.drops[amount] == 0.0)
    assert result.mean.max() > 0  # the features it does read matter


def test_wrapped_predictions_look_like_a_fitted_classifier() -> None:
    wrapped = PredictedClassifier(lambda f: f[:, 0])
    proba = wrapped.predict_proba(np.array([[0.2] + [0] * 29, [0.9] + [0] * 29]))
    np.testing.assert_allclose(proba, [[0.8, 0.2], [0.1, 0.9]], atol=1e-7)
    assert list(wrapped.predict(np.array([[0.2] + [0] * 29]))) == [0]
    assert wrapped.fit(None, None) is wrapped


def test_repeats_must_be_positive(small) -> None:
    with pytest.raises(ParameterError, match="repeats must be >= 1, got 0"):
        permutation_importance(lambda f: f[:, 0], small.features(), small.labels(), repeats=0)
