"""Attributions through each backend's autodiff, checked against a NumPy
re-implementation of the network and across the three backends."""

from __future__ import annotations

import numpy as np
import pytest

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.errors import ParameterError
from fraudkeras.analysis.attribution import (
    METHODS,
    attributions,
    baseline,
    explain,
    logit_gradients,
)
from fraudkeras.modeling.model import fraud_probabilities, load_model
from helpers import BACKEND, attributions_under, numpy_time_of_day, only_backend


def numpy_network(model):
    """The model's (calibrated) logit and its input gradient, in float64 NumPy from its weights
    (the ``time_of_day`` transform by :func:`helpers.numpy_time_of_day`)."""
    timed, log_amount = model.features != "raw", model.features == "time_of_day_log_amount"
    mean = np.asarray(model.scaler.adapt_mean, np.float64).reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(model.scaler.adapt_variance, np.float64)), 1e-7)
    layers = [(np.asarray(layer.kernel, np.float64), np.asarray(layer.bias, np.float64))
              for layer in [*model.hidden, model.logit]]  # fmt: skip
    # the calibration map after the logit layer: the model's logit is scale * z + bias
    scale, shift = (
        (1.0, 0.0)
        if model.calibration is None
        else (
            float(np.asarray(model.calibration.scale)[0]),
            float(np.asarray(model.calibration.bias)[0]),
        )
    )

    def inputs(x: np.ndarray) -> np.ndarray:
        return numpy_time_of_day(x, log_amount)[0] if timed else x

    def logit(x: np.ndarray) -> np.ndarray:
        h = (inputs(x) - mean) / std
        for kernel, bias in layers[:-1]:
            h = np.maximum(h @ kernel + bias, 0.0)
        return scale * (h @ layers[-1][0] + layers[-1][1]).reshape(-1) + shift

    def gradient(x: np.ndarray) -> np.ndarray:
        h, masks = (inputs(x) - mean) / std, []
        for kernel, bias in layers[:-1]:
            pre = h @ kernel + bias
            masks.append(pre > 0)
            h = np.maximum(pre, 0.0)
        back = np.broadcast_to(scale * layers[-1][0][:, 0], (len(x), layers[-1][0].shape[0]))
        for (kernel, _), mask in zip(reversed(layers[:-1]), reversed(masks), strict=True):
            back = (back * mask) @ kernel.T
        back = back / std
        if not timed:
            return back
        _, d_time, d_amount = numpy_time_of_day(x, log_amount)  # chain rule
        d_first = np.sum(back[:, :2] * d_time, axis=1)
        return np.column_stack([d_first, back[:, 2:-1], back[:, -1] * d_amount])

    return logit, gradient


@pytest.fixture(scope="module")
def model_and_rows(trained_run):
    model = load_model(trained_run.run_dir / "model.keras")
    test = trained_run.split.test
    rows = np.r_[np.flatnonzero(test.y == 1)[:8], np.flatnonzero(test.y == 0)[:8]]
    return model, test.x[rows].astype(np.float64)


def test_gradients_match_numpy_backprop(model_and_rows) -> None:
    model, x = model_and_rows
    _, gradient = numpy_network(model)
    expected = gradient(x)
    got = logit_gradients(model, x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_gradient_x_input_is_the_gradient_times_the_distance_from_the_mean(model_and_rows):
    model, x = model_and_rows
    _, gradient = numpy_network(model)
    got = attributions(model, x, method="gradient_x_input")
    expected = (x - baseline(model)) * gradient(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_integrated_gradients_add_up_to_the_logit_change(model_and_rows) -> None:
    model, x = model_and_rows
    logit, _ = numpy_network(model)
    change = logit(x) - logit(baseline(model)[None, :])
    coarse = np.abs(attributions(model, x, steps=16).sum(axis=1) - change).max()
    fine = np.abs(attributions(model, x, steps=512).sum(axis=1) - change).max()
    assert fine < 0.05 * max(1.0, np.abs(change).max())
    assert fine <= coarse  # the midpoint rule converges


def test_explain_reports_the_models_probability(model_and_rows) -> None:
    model, x = model_and_rows
    explained = explain(model, x[0])
    assert explained.probability == pytest.approx(fraud_probabilities(model, x[:1])[0], rel=1e-5)
    total = sum(explained.contributions.values())
    assert total == pytest.approx(explained.logit - explained.baseline_logit, abs=0.1)
    assert list(explained.values) == list(explained.contributions)


def test_bad_method_and_steps_are_refused(model_and_rows) -> None:
    model, x = model_and_rows
    with pytest.raises(ParameterError, match="method must be one of"):
        attributions(model, x, method="shap")
    with pytest.raises(ParameterError, match="steps must be >= 1, got 0"):
        attributions(model, x, steps=0)


@only_backend("torch")  # this backend against the other two: every pair once
def test_every_backend_gives_the_same_attributions(trained_run, model_and_rows, tmp_path):
    """The same .keras model, attributed here and in a subprocess per other backend."""
    model, x = model_and_rows
    here = {method: attributions(model, x, method=method) for method in METHODS}
    others = [b for b in BACKENDS if b != BACKEND and is_installed(b)]
    if not others:
        pytest.skip("no other backend installed")
    for other in others:
        there = attributions_under(other, trained_run.run_dir / "model.keras", x, tmp_path)
        assert sorted(there) == sorted(METHODS)
        for method in METHODS:
            gap = np.abs(there[method] - here[method]).max()
            assert gap <= 4e-6, (
                f"{method}: {BACKEND} vs {other} differ by {gap:.2e}"
            )  # 8e-7 measured
