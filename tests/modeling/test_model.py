"""FraudMLP under the active backend, checked against NumPy and scikit-learn."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import numpy_reference as reference
import pytest
from keras import ops
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from fraudkeras._core.errors import ModelFileError
from fraudkeras.modeling import features as transforms
from fraudkeras.modeling.model import FraudMLP, fraud_probabilities, load_model
from helpers import make_model, numpy_weighted_bce


def to_numpy(value: object) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(value), dtype=np.float64)


def numpy_logits(
    model: FraudMLP, x: np.ndarray, params: list[np.ndarray] | None = None
) -> np.ndarray:
    """The forward pass in float64 NumPy (tests/numpy_reference.py) of the model's
    weights, or of ``params`` in their place (aligned with trainable_variables)."""
    weights = reference.weights_of(model)
    return reference.logits(weights if params is None else weights.with_params(params), x)


@pytest.fixture(scope="module")
def batch(small):
    rng = np.random.default_rng(1)
    x, y = small.features().astype(np.float32), small.labels()
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y == 1), 16), rng.choice(np.flatnonzero(y == 0), 48)]
    )
    return x[rows], y[rows], x


def test_scaler_equals_standard_scaler(small) -> None:
    x = small.features()
    model = make_model(x)
    expected = StandardScaler().fit_transform(x)
    scaled = to_numpy(model.standardize(x.astype(np.float32)))  # what call() uses
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(model.scaler(x.astype(np.float32))), expected, atol=1e-5)


def test_output_is_a_probability_per_row(batch) -> None:
    x, _, full = batch
    model = make_model(full)
    probabilities = fraud_probabilities(model, x)
    assert probabilities.shape == (len(x),)
    assert np.all((probabilities > 0) & (probabilities < 1))
    expected = 1 / (1 + np.exp(-numpy_logits(model, x)))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def sgd_gradient(model: FraudMLP, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """One train_step with SGD(lr=1): the update is exactly minus the gradient."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    before = [to_numpy(v) for v in model.trainable_variables]
    logs = model.train_on_batch(x, y, return_dict=True)
    after = [to_numpy(v) for v in model.trainable_variables]
    return float(logs["loss"]), [b - a for b, a in zip(before, after, strict=True)]


def test_train_step_loss_and_gradient_match_numpy(batch) -> None:
    x, y, full = batch
    weights = (0.8, 6.0)
    model = make_model(full, class_weight=weights)
    params = [to_numpy(v) for v in model.trainable_variables]

    def loss_at(candidate: list[np.ndarray]) -> float:
        return numpy_weighted_bce(y, numpy_logits(model, x, candidate), *weights)

    reported_loss, gradient = sgd_gradient(model, x, y)
    assert reported_loss == pytest.approx(loss_at(params), rel=1e-5)

    # central differences at 48 random entries of every weight tensor (all of them
    # would take ~10,000 NumPy forward passes, about 20 s, in every backend's run)
    eps, picks = 1e-6, np.random.default_rng(0)
    for index, tensor in enumerate(params):
        flat = picks.choice(tensor.size, size=min(48, tensor.size), replace=False)
        for position in (np.unravel_index(i, tensor.shape) for i in flat):
            shifted = [p.copy() for p in params]
            shifted[index][position] += eps
            up = loss_at(shifted)
            shifted[index][position] -= 2 * eps
            numeric = (up - loss_at(shifted)) / (2 * eps)
            assert gradient[index][position] == pytest.approx(numeric, rel=1e-3, abs=2e-6)


def test_fraud_weight_scales_the_fraud_gradient(batch) -> None:
    x, y, full = batch
    frauds = x[y == 1], y[y == 1]
    _, plain = sgd_gradient(make_model(full, class_weight=(1.0, 1.0)), *frauds)
    _, boosted = sgd_gradient(make_model(full, class_weight=(1.0, 4.0)), *frauds)
    for a, b in zip(plain, boosted, strict=True):
        # before - after in float32 carries ~1 ulp (1.2e-7 at |w| ~ 1) of rounding
        np.testing.assert_allclose(b, 4 * a, rtol=1e-4, atol=5e-7)
    _, mixed_plain = sgd_gradient(make_model(full, class_weight=(1.0, 1.0)), x, y)
    _, mixed_boosted = sgd_gradient(make_model(full, class_weight=(1.0, 4.0)), x, y)
    assert not np.allclose(mixed_plain[-2], mixed_boosted[-2], rtol=1e-2)


def test_reported_metrics_match_numpy_and_sklearn(small) -> None:
    x, y = small.features().astype(np.float32)[:1050], small.labels()[:1050]
    model = make_model(small.features(), class_weight=(1.0, 3.0), seed=2)
    model.compile(optimizer="adam")
    logs = model.evaluate(x, y, batch_size=100, return_dict=True, verbose=0)
    probabilities = 1 / (1 + np.exp(-numpy_logits(model, x)))
    assert logs["loss"] == pytest.approx(
        numpy_weighted_bce(y, numpy_logits(model, x), 1.0, 3.0), rel=1e-5
    )
    # keras.metrics.AUC approximates with 200 thresholds: close, not equal, to sklearn.
    assert logs["roc_auc"] == pytest.approx(roc_auc_score(y, probabilities), abs=0.01)
    assert logs["pr_auc"] == pytest.approx(average_precision_score(y, probabilities), abs=0.05)


def test_config_round_trip_and_save_load(batch, tmp_path: Path) -> None:
    x, _, full = batch
    model = make_model(full, class_weight=(1.0, 9.0))
    clone = FraudMLP.from_config(model.get_config())
    assert clone.hidden_units == (64, 32, 16) and clone.class_weight == (1.0, 9.0)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.class_weight == (1.0, 9.0)
    np.testing.assert_allclose(
        fraud_probabilities(loaded, x), fraud_probabilities(model, x), atol=1e-7
    )


def test_custom_hidden_units(batch) -> None:
    x, _, full = batch
    keras.utils.set_random_seed(0)
    model = FraudMLP(hidden_units=(8,))
    model.adapt(full)
    assert [v.shape for v in model.trainable_variables] == [(30, 8), (8,), (8, 1), (1,)]
    assert fraud_probabilities(model, x).shape == (len(x),)


def test_load_model_rejects_bad_files(tmp_path: Path, batch) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.keras")
    noise = tmp_path / "noise.keras"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match=r"not a \.keras file"):
        load_model(noise)
    make_model(batch[2]).save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.keras"):
        load_model(tmp_path / "cut.keras")
    other = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ModelFileError, match="holds a Sequential, not a FraudMLP"):
        load_model(tmp_path / "other.keras")


def test_prepared_rows_train_as_the_raw_rows(batch) -> None:
    """``prepare`` (the training table, transformed and scaled once) gives the rows
    scikit-learn's scaler gives on the NumPy transform, and a train step on them
    has the loss and gradient of a step on the raw rows (up to float32 rounding:
    jitted steps fuse the transform, eager ``prepare`` does not)."""
    x, y, full = batch
    keras.utils.set_random_seed(3)
    model = FraudMLP(class_weight=(1.0, 5.0), features=transforms.TIME_OF_DAY_LOG_AMOUNT)
    model.adapt(full)
    prepared = model.prepare(x)
    transformed = transforms.apply_numpy(full, transforms.TIME_OF_DAY_LOG_AMOUNT)
    expected = (
        StandardScaler()
        .fit(transformed)
        .transform(transforms.apply_numpy(x, transforms.TIME_OF_DAY_LOG_AMOUNT))
    )
    np.testing.assert_allclose(prepared, expected, atol=2e-5)

    steps = {}
    for name, inputs in (("raw", x), ("prepared", {transforms.PREPARED: prepared})):
        step_model = FraudMLP.from_config(model.get_config())
        step_model.build((None, x.shape[1]))
        step_model.set_weights(model.get_weights())
        step_model.compile(optimizer=keras.optimizers.SGD(1.0))  # update = -gradient
        loss = step_model.train_on_batch(inputs, y, return_dict=True)["loss"]
        steps[name] = (float(loss), [to_numpy(v) for v in step_model.trainable_variables])
    assert steps["prepared"][0] == pytest.approx(steps["raw"][0], rel=1e-6)
    gaps = [
        np.max(np.abs(g - w)) for g, w in zip(steps["prepared"][1], steps["raw"][1], strict=True)
    ]
    print("largest weight gap after one SGD step:", max(gaps))
    assert max(gaps) < 1e-6
    assert not np.allclose(steps["raw"][1][0], to_numpy(model.trainable_variables[0]))
