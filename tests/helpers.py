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


def numpy_time_of_day(
    x: np.ndarray, log_amount: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``time_of_day`` (``log_amount``: ``time_of_day_log_amount``) transform written
    independently (float64, ``mod 86400`` directly), d(time_sin, time_cos)/d Time and
    d(last column)/d Amount per row."""
    x = np.asarray(x, dtype=np.float64)
    angle = 2 * np.pi * np.mod(x[:, 0], 86400.0) / 86400.0
    amount, d_amount = x[:, -1], np.ones(len(x))
    if log_amount:
        amount, d_amount = (
            np.log1p(np.maximum(amount, 0)),
            np.where(amount > 0, 1 / (1 + amount), 0),
        )
    out = np.column_stack([np.sin(angle), np.cos(angle), x[:, 1:-1], amount])
    d_angle = 2 * np.pi / 86400.0
    d_time = np.column_stack([np.cos(angle) * d_angle, -np.sin(angle) * d_angle])
    return out, d_time, d_amount
