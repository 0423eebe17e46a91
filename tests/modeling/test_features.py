"""The input transform: time of day inside the model, checked against NumPy, for
invariance to whole-day shifts of ``Time`` (Keras model on this backend, every
exported artifact), and for models saved before it existed."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraudkeras._core.errors import ParameterError
from fraudkeras.deploy.artifacts import open_artifact
from fraudkeras.deploy.export import FORMATS
from fraudkeras.modeling import features as transforms
from fraudkeras.modeling.model import FraudMLP, fraud_probabilities, load_model
from fraudkeras.runs.config import TrainConfig
from helpers import REPO, numpy_time_of_day

DAY = 86400
#: 1, 30 and 365 days, and a Unix-epoch-sized shift (2024-01-01 is day 19,723)
SHIFT_DAYS = (1, 30, 365, 19_723)
FIXTURE = REPO / "tests" / "fixtures" / "fraudmlp_raw_v0"
#: |Δp| between rows whose float32 ``Time`` differs by exactly whole days: (Time / 128)
#: mod 675 is then the same exact integer, so the transformed inputs are identical;
#: measured 0.0 on the Keras model (all backends) and every exported file. The bound
#: leaves one float32 rounding of p for a runtime that evaluates ops differently.
SAME_INPUT_TOL = 1e-7


def test_keras_transform_equals_numpy(small) -> None:
    x = small.features()
    x[:5, 0] = [0, DAY - 1, DAY, 1.7e9, 1.7e9 + 64]  # midnight, a second before, epoch-sized
    expected = numpy_time_of_day(x.astype(np.float32))[0]
    model = FraudMLP(features="time_of_day")
    got = keras.ops.convert_to_numpy(model.transform(x.astype(np.float32)))
    names = ("time_sin", "time_cos", *(f"V{i}" for i in range(1, 29)), "Amount")
    assert model.feature_names == names
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(transforms.apply_numpy(x, "time_of_day"), expected, atol=1e-9)
    logged = numpy_time_of_day(x.astype(np.float32), log_amount=True)[0]
    np.testing.assert_allclose(
        transforms.apply_numpy(x, "time_of_day_log_amount"), logged, atol=1e-9
    )
    model = FraudMLP(features="time_of_day_log_amount")
    got = keras.ops.convert_to_numpy(model.transform(x.astype(np.float32)))
    np.testing.assert_allclose(got, logged, atol=1e-5)


def test_midnight_neighbours() -> None:
    rows = np.zeros((2, 30), np.float32)
    rows[:, 0] = [DAY - 1, DAY]  # 23:59:59 and 00:00:00 of the next day
    out = transforms.apply_numpy(rows, "time_of_day")
    assert np.linalg.norm(out[0, :2] - out[1, :2]) < 2 * np.pi / DAY * 1.01


def test_unknown_transform_is_refused() -> None:
    with pytest.raises(ParameterError):
        TrainConfig(features="hour")
    with pytest.raises(ParameterError):
        FraudMLP(features="hour")


def shifted(x: np.ndarray, days: int) -> np.ndarray:
    out = x.astype(np.float32).copy()
    out[:, 0] = (x[:, 0].astype(np.float64) + days * DAY).astype(np.float32)
    return out


def on_128_s_grid(x: np.ndarray) -> np.ndarray:
    """``Time`` rounded to a multiple of 128 s: then ``Time + k days`` is exact in float32
    up to 2**31 s (86,400 = 128 x 675), so shifted rows are the same time of day."""
    out = x.astype(np.float32).copy()
    out[:, 0] = np.round(x[:, 0] / 128) * 128
    return out


def sensitivity_tolerance(predict_fn, x: np.ndarray) -> float:
    """What float32 resolution allows for a shift of a Time not on the grid: near
    1.7e9 float32 keeps a 128-s step, so the shifted Time's time of day moves by up to
    64 s. The bound is twice the largest |Δp| that moving Time by ±64 s causes."""
    p = predict_fn(x)
    moved = [x.copy(), x.copy()]
    moved[0][:, 0] += 64
    moved[1][:, 0] -= 64
    return 2 * max(float(np.max(np.abs(predict_fn(m) - p))) for m in moved) + SAME_INPUT_TOL


def check_invariance(predict_fn, x: np.ndarray, y: np.ndarray) -> None:
    grid = on_128_s_grid(x)
    p_grid, p = predict_fn(grid), predict_fn(x)
    tolerance = sensitivity_tolerance(predict_fn, x)
    for days in SHIFT_DAYS:
        p_grid_shifted = predict_fn(shifted(grid, days))
        assert np.max(np.abs(p_grid_shifted - p_grid)) <= SAME_INPUT_TOL, days
        p_shifted = predict_fn(shifted(x, days))
        assert np.max(np.abs(p_shifted - p)) <= tolerance, days
        pr_auc = average_precision_score(y, p_grid_shifted)
        assert pr_auc == pytest.approx(average_precision_score(y, p_grid), abs=1e-9), days


def test_keras_model_is_invariant_to_whole_days(trained_run) -> None:
    model = load_model(trained_run.run_dir / "model.keras")
    assert model.features == "time_of_day_log_amount"
    test = trained_run.split.test
    check_invariance(lambda x: fraud_probabilities(model, x), test.x, test.y)


@pytest.mark.parametrize("name", list(FORMATS))
def test_exported_artifacts_are_invariant_to_whole_days(exported, trained_run, name) -> None:
    run, _ = exported
    artifact = open_artifact(run / "export" / FORMATS[name])
    test = trained_run.split.test
    check_invariance(artifact.predict, test.x, test.y)


def test_model_saved_before_the_transform_loads_as_raw(tmp_path: Path) -> None:
    """A .keras written before the input transform existed (tests/fixtures, no ``features`` in
    its config) predicts as it did then, Time shift and all."""
    expected = np.load(FIXTURE.with_suffix(".npz"))
    model = load_model(FIXTURE.with_suffix(".keras"))
    assert model.features == "raw"
    # measured gap between backends: 6e-8; written under JAX
    np.testing.assert_allclose(
        fraud_probabilities(model, expected["rows"]), expected["p"], atol=1e-6
    )
    np.testing.assert_allclose(
        fraud_probabilities(model, expected["rows_shifted"]), expected["p_shifted"], atol=1e-6
    )
    model.save(tmp_path / "again.keras")
    assert load_model(tmp_path / "again.keras").get_config()["features"] == "raw"


def test_old_run_config_reads_as_raw() -> None:
    assert TrainConfig.from_record({"epochs": 3}).features == "raw"
    assert TrainConfig().features == "time_of_day_log_amount"
