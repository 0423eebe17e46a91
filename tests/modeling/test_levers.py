"""The model's two optional levers, periodic embeddings and a TabM-mini ensemble:
saved, reloaded with plain Keras and checked against the float64 NumPy forward
pass of tests/numpy_reference.py; trained; exported to LiteRT; trained from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy_reference as reference
import pytest

from fraudkeras._core.errors import ParameterError
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs.config import TrainConfig
from helpers import BACKEND, numpy_model_inputs, only_backend, run_cli

LEVERS = {
    "periodic": {"embeddings": "periodic"},
    "ensemble": {"ensemble": 4},
    "both": {"embeddings": "periodic", "ensemble": 4},
}


def lever_model(features: np.ndarray, **levers: Any) -> FraudMLP:
    keras.utils.set_random_seed(0)
    model = FraudMLP(class_weight=(1.0, 5.0), **levers)
    model.adapt(features)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    return model


def numpy_bce(model: FraudMLP, x: np.ndarray, y: np.ndarray) -> float:
    """The training loss of ``model``'s weights, in NumPy (no calibration: training's)."""
    logits = reference.logits(reference.weights_of(model), numpy_model_inputs(model.features, x))
    return reference.weighted_bce(y, logits, *model.class_weight)


@pytest.fixture(scope="module")
def rows(small) -> tuple[np.ndarray, np.ndarray]:
    return small.features().astype(np.float32), small.labels().astype(np.float32)


@pytest.mark.parametrize("case", list(LEVERS))
def test_saved_model_reloads_and_predicts_the_numpy_forward_pass(
    rows, tmp_path: Path, case: str
) -> None:
    # one parity check per backend (both levers); the single levers under JAX only
    if case != "both" and BACKEND != "jax":
        pytest.skip("jax backend only")
    x, y = rows
    model = lever_model(x, **LEVERS[case])
    model.fit(x, y, epochs=1, batch_size=256, verbose=0)  # weights away from their init
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, FraudMLP)
    assert (loaded.embeddings, loaded.ensemble) == (model.embeddings, model.ensemble)
    weights = reference.weights_of(loaded)
    assert (weights.embedding is not None) == ("embeddings" in LEVERS[case])
    assert (weights.members is not None) == ("ensemble" in LEVERS[case])
    got = loaded.predict(x[:500], batch_size=128, verbose=0)
    assert got.shape == (500, 1)
    expected = reference.probabilities(weights, numpy_model_inputs(loaded.features, x[:500]))
    np.testing.assert_allclose(got.ravel(), expected, rtol=0, atol=1e-5)


@only_backend("jax")
@pytest.mark.parametrize("case", ["periodic", "ensemble"])
def test_training_with_a_lever_lowers_the_loss(rows, case: str) -> None:
    x, y = rows
    model = lever_model(x, **LEVERS[case])
    before = numpy_bce(model, x, y)
    model.fit(x, y, epochs=2, batch_size=256, verbose=0)
    after = numpy_bce(model, x, y)
    assert after < 0.7 * before, (before, after)


@only_backend("jax")
def test_ensemble_members_start_different_and_share_the_hidden_kernels(rows) -> None:
    x, _ = rows
    model = lever_model(x, ensemble=4)
    signs = reference.weights_of(model).members
    assert signs is not None and signs.shape == (4, len(model.feature_names))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert len({row.tobytes() for row in signs}) == 4
    plain = lever_model(x)
    # the hidden layers keep their shapes: K members cost K sign vectors and K logits
    extra = model.count_params() - plain.count_params()
    assert extra == 4 * len(model.feature_names) + 3 * (16 + 1)


@only_backend("jax")
def test_default_model_and_old_configs_have_no_levers(rows) -> None:
    x, _ = rows
    model = lever_model(x)
    config = model.get_config()
    assert (config["embeddings"], config["ensemble"]) == ("none", 1)
    old = {k: v for k, v in config.items() if k not in ("embeddings", "ensemble")}
    rebuilt = FraudMLP.from_config(old)
    assert rebuilt.embedding is None and rebuilt.member_inputs is None
    assert isinstance(rebuilt.logit, keras.layers.Dense)
    record = {"epochs": 3, "backend": "jax"}  # a run's config.json from before the levers
    recorded = TrainConfig.from_record(record)
    assert (recorded.embeddings, recorded.ensemble) == ("none", 1)
    with pytest.raises(ParameterError, match="embeddings must be one of"):
        TrainConfig(embeddings="fourier")
    with pytest.raises(ParameterError, match="ensemble must be >= 1"):
        TrainConfig(ensemble=0)


@only_backend("tensorflow")  # exports in this process; once per tox run is enough
def test_cli_run_with_both_levers_exports_a_matching_litert_file(
    small, small_parquet: Path, tmp_path: Path
) -> None:
    """``fraudkeras train --embeddings periodic --ensemble 4`` as typed, then the
    float32 LiteRT export against the reloaded model on the run's test rows."""
    from fraudkeras.data.splits import split
    from fraudkeras.deploy.artifacts import open_artifact
    from fraudkeras.deploy.export import FORMATS, export
    from fraudkeras.modeling.model import fraud_probabilities

    result = run_cli(
        "train", "--embeddings", "periodic", "--ensemble", "4", "--data", str(small_parquet),
        "--epochs", "2", "--batch-size", "128", "--seed", "7", "--out", str(tmp_path / "run"),
        "--no-report",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert (model.embeddings, model.ensemble) == ("periodic", 4)
    manifest = export(tmp_path / "run", ("litert",))
    x = split(small, "stratified", 42).test.x
    expected = fraud_probabilities(model, x)
    got = open_artifact(tmp_path / "run" / "export" / FORMATS["litert"]).predict(x)
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert manifest["artifacts"]["litert"]["max_abs_diff"] <= 1e-5
