"""A .keras file trained under any backend loads under every backend with plain
Keras and predicts, evaluates, trains and exports (subprocesses: a backend cannot
be switched inside a process); the 3 x 3 pairs run once, from the JAX env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy_reference as reference
import polars as pl
import pytest

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.modeling.model import load_model
from helpers import numpy_model_inputs, only_backend, run_test_job

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fraudmlp_raw_v0.keras"


@only_backend("jax")  # spawns every backend itself; once per tox run is enough
def test_train_anywhere_load_with_plain_keras_anywhere(small, tmp_path: Path) -> None:
    """The 3 x 3 matrix as users meet it: a run trained by :func:`fraudkeras.train`
    (its ``.keras`` compiled with ``steps_per_execution`` > 1 and ``jit_compile``
    resolved by its backend), loaded by ``keras.saving.load_model`` under each backend, then
    ``predict``, ``evaluate``, ``compile`` + ``fit`` and an export of the result.
    Every number is checked against a float64 NumPy forward pass of the weights."""
    installed = [b for b in BACKENDS if is_installed(b)]
    if len(installed) < 2 or "tensorflow" not in installed:
        pytest.skip("needs TensorFlow and another backend")
    frame = small.frame
    table = pl.concat([frame.filter(pl.col(LABEL) == 1).head(150),
                       frame.filter(pl.col(LABEL) == 0).head(1850)]).sort("Time")  # fmt: skip
    table.write_parquet(tmp_path / "table.parquet")
    x, y = features_of(table), table[LABEL].to_numpy().astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    trained = {b: tmp_path / f"run-{b}" / "model.keras" for b in installed}
    with ThreadPoolExecutor() as pool:  # the processes side by side
        list(pool.map(lambda b: run_test_job(b, "train-run", tmp_path / "table.parquet",
                                             trained[b].parent), installed))  # fmt: skip
        assert compile_config(trained["jax"])["steps_per_execution"] > 1  # what torch refused

        def use_loaded(backend: str) -> None:
            export = "export" if backend == "tensorflow" else ""
            run_test_job(backend, "use-loaded", tmp_path / "x.npy", tmp_path / "y.npy",
                         tmp_path, export, *trained.values())  # fmt: skip

        list(pool.map(use_loaded, [b for b in installed if b != "tensorflow"]))
        use_loaded("tensorflow")  # last: it exports what the others fine-tuned

    def numpy_probabilities(path: Path) -> tuple[np.ndarray, np.ndarray]:
        model = load_model(path)
        weights = reference.weights_of(model)
        inputs = numpy_model_inputs(model.features, x)
        # evaluate's loss is the model's output's: the calibrated logits
        return reference.probabilities(weights, inputs), reference.calibrated_logits(
            weights, inputs
        )

    for a in installed:
        p_trained, logits = numpy_probabilities(trained[a])
        loss = reference.weighted_bce(y, logits, *load_model(trained[a]).class_weight)
        for b in installed:
            pair = f"trained under {a}, loaded under {b}"
            got = np.load(tmp_path / f"run-{a}-{b}.npz")
            np.testing.assert_allclose(got["before"], p_trained, rtol=0, atol=1e-5, err_msg=pair)
            assert float(got["loss"]) == pytest.approx(loss, rel=1e-5), pair
            assert got["fit_loss"][-1] < loss, pair  # two epochs of Adam lowered the loss
            tuned = tmp_path / f"tuned-run-{a}-{b}.keras"
            p_tuned, _ = numpy_probabilities(tuned)
            assert np.max(np.abs(p_tuned - p_trained)) > 1e-4, pair  # fit moved the weights
            np.testing.assert_allclose(got["after"], p_tuned, rtol=0, atol=1e-5, err_msg=pair)
            exported = np.load(tuned.with_suffix(".exported.npy"))
            np.testing.assert_allclose(exported, p_tuned, rtol=0, atol=1e-5, err_msg=pair)


def features_of(table: pl.DataFrame) -> np.ndarray:
    return table.select(FEATURES).to_numpy().astype(np.float32)


def compile_config(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))["compile_config"]


@only_backend("jax")  # a fresh TensorFlow process; once per tox run is enough
def test_plain_keras_loads_after_tensorflow_probed_for_keras() -> None:
    """``import tensorflow`` asks ``importlib.util.find_spec("keras")`` before it
    imports Keras; the registration must still happen at the real import."""
    script = (
        "import fraudkeras, tensorflow, keras, sys; "
        "m = keras.saving.load_model(sys.argv[1]); print(type(m).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(FIXTURE)], capture_output=True, text=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "FraudMLP"
