"""A trained run's model outputs calibrated probabilities: sigmoid(a * z + b) of its
raw logit z (computed in NumPy), with a and b from scikit-learn's logistic regression
of the validation labels on the validation logits; through ``keras.saving`` and the
exported LiteRT file alike. Models saved before the layer existed load without it."""

from __future__ import annotations

import keras
import numpy as np
import numpy_reference as reference
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from fraudkeras.modeling.model import load_model
from helpers import REPO, numpy_model_inputs, only_backend

#: float32 forward pass and map against float64 NumPy and LBFGS tolerances: the
#: measured gap was ~3e-7 (JAX)
TOL = 2e-5


def raw_logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    inputs = numpy_model_inputs(model.features, np.asarray(x, dtype=np.float32))
    return reference.logits(reference.weights_of(model), inputs)


def expected(run, x: np.ndarray) -> np.ndarray:
    model = load_model(run.run_dir / "model.keras")
    validation = run.split.validation
    fitted = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(
        raw_logits(model, validation.x)[:, None], validation.y
    )
    a, b = fitted.coef_[0, 0], fitted.intercept_[0]
    return expit(a * raw_logits(model, x) + b)


def test_saved_model_outputs_platt_scaled_probabilities(trained_run) -> None:
    assert trained_run.config.calibration == "platt"
    test = trained_run.split.test
    loaded = keras.saving.load_model(trained_run.run_dir / "model.keras")
    got = np.asarray(loaded.predict(test.x, verbose=0), dtype=np.float64).ravel()
    np.testing.assert_allclose(got, expected(trained_run, test.x), atol=TOL)
    recorded = trained_run.metrics["calibration"]["test"]
    after = brier_score_loss(test.y, trained_run.holdout[1].probabilities)
    assert recorded["after"]["brier"] == pytest.approx(after, rel=1e-12)
    assert recorded["after"]["brier"] < recorded["before"]["brier"] * 1.05


@only_backend("tensorflow")  # export runs under TensorFlow
def test_litert_file_outputs_the_calibrated_probabilities(trained_run, exported) -> None:
    from ai_edge_litert.interpreter import Interpreter

    run = exported[0]
    x = np.ascontiguousarray(trained_run.split.test.x[:300], dtype=np.float32)
    interpreter = Interpreter(model_path=str(run / "export" / "model_float32.tflite"))
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    got = np.asarray(interpreter.get_tensor(result["index"]), dtype=np.float64).ravel()
    np.testing.assert_allclose(got, expected(trained_run, x), atol=TOL)


def test_model_saved_before_calibration_loads_and_scores_as_before() -> None:
    fixture = REPO / "tests" / "fixtures" / "fraudmlp_raw_v0"
    recorded = np.load(fixture.with_suffix(".npz"))
    loaded = keras.saving.load_model(fixture.with_suffix(".keras"))
    assert loaded.calibration is None
    got = np.asarray(loaded.predict(recorded["rows"], verbose=0), dtype=np.float64).ravel()
    np.testing.assert_allclose(got, recorded["p"], atol=1e-6)
