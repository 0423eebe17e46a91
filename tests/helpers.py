"""Constants and helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BACKEND = os.environ.get("KERAS_BACKEND", "jax")
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


#: metrics.json fields that measure this machine, not the model: every other number
#: is identical when a run is repeated with the same seed and backend
MEASUREMENTS = ("train_seconds", "median_epoch_seconds", "peak_rss_mb")


def run_test_job(backend: str, job: str, *args) -> None:
    """A job of ``tests/backend_jobs.py`` under ``backend`` in a fresh process."""
    from fraudkeras._core.subprocesses import run_job

    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    run_job(backend, job, *args, module="backend_jobs", env={"PYTHONPATH": path})


def attributions_under(backend: str, model_path: Path, features: np.ndarray, scratch: Path):
    """Attributions of a ``.keras`` model on ``features`` by every method, under ``backend``."""
    x_path, out_path = scratch / f"x-{backend}.npy", scratch / f"a-{backend}.npz"
    np.save(x_path, features)
    run_test_job(backend, "attribute", model_path, x_path, out_path)
    with np.load(out_path) as saved:
        return {method: np.asarray(saved[method]) for method in saved.files}


def only_backend(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(name != BACKEND, reason=f"{name} backend only")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run ``python -m fraudkeras`` in a fresh process (what a user's shell does)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fraudkeras", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )


def make_model(features: np.ndarray, class_weight=(1.0, 1.0), seed: int = 0, optimizer=None):
    """A FraudMLP with seeded weights, its scaler adapted on ``features``, and
    (given an optimizer) compiled and built so a train step can run at once."""
    import keras

    from fraudkeras.modeling.model import FraudMLP

    keras.utils.set_random_seed(seed)
    model = FraudMLP(class_weight=class_weight)
    model.adapt(features)
    if optimizer is not None:
        model.compile(optimizer=optimizer)
        model.optimizer.build(model.trainable_variables)
    return model


def numpy_weighted_bce(y: np.ndarray, logits: np.ndarray, normal: float, fraud: float) -> float:
    """The weighted BCE written independently in float64 NumPy."""
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per_example = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.mean(np.where(y == 1, fraud, normal) * per_example))


def assert_real_png(path: Path) -> None:
    """A PNG of the plots' size that is not blank."""
    from PIL import Image

    from fraudkeras.analysis import plots

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == plots.SIZE_PX
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 5  # not a blank canvas
    assert len(np.unique(pixels)) > 20
