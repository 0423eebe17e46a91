"""Constants and helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy_reference as reference
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


def free_port() -> int:
    """A TCP port free on loopback now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


#: the weighted BCE written independently in float64 NumPy
numpy_weighted_bce = reference.weighted_bce


@dataclass
class AdamStepCase:
    """A compiled FraudMLP holding known weights and a known Adam state, one batch,
    and what the NumPy reference says one train step on that batch gives."""

    model: Any
    x: np.ndarray
    y: np.ndarray
    before: reference.Weights
    gradients: list[np.ndarray]  # d loss / d params, reference.Weights.params order
    loss: float
    after: list[np.ndarray]  # the params after the step, same order


def adam_step_case(
    features: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    class_weight: tuple[float, float] = (0.7, 12.0),
    learning_rate: float = 0.01,
) -> AdamStepCase:
    """Known weights (:func:`numpy_reference.known_weights` on ``features``) and a
    known Adam state written into a FraudMLP compiled with ``keras.optimizers.Adam``.

    The state is mid-training (9 steps done, nonzero moments): from a fresh state one
    Adam step is ``lr * g / (|g| + 3e-6)``, about ``lr * sign(g)``, and would not see a
    wrong gradient magnitude. With ``v`` of the gradients' size (|g| ~ 1e-3 .. 0.4
    here) the step depends on ``g`` itself.
    """
    import keras

    model = make_model(
        features, class_weight, optimizer=keras.optimizers.Adam(learning_rate=learning_rate)
    )
    weights = reference.known_weights(features)
    reference.assign(model, weights)
    rng = np.random.default_rng(1)
    params = weights.params
    state = reference.AdamState(
        iterations=9,
        m=[rng.normal(scale=1e-3, size=p.shape).astype(np.float32) for p in params],
        v=[rng.uniform(1e-6, 1e-4, size=p.shape).astype(np.float32) for p in params],
    )
    optimizer = model.optimizer
    optimizer.iterations.assign(state.iterations)
    variables = [v for layer in [*model.hidden, model.logit] for v in (layer.kernel, layer.bias)]
    for variable, m, v in zip(variables, state.m, state.v, strict=True):
        index = optimizer._get_variable_index(variable)
        optimizer._momentums[index].assign(m)
        optimizer._velocities[index].assign(v)
    loss, gradients = reference.loss_and_gradients(weights, x, y, *class_weight)
    after, _ = reference.adam_step(params, gradients, state, learning_rate)
    return AdamStepCase(model, x, y, weights, gradients, loss, after)


def largest_gap(got: list[np.ndarray], expected: list[np.ndarray]) -> float:
    """max |got - expected| over every tensor (printed by the step tests with -s)."""
    return max(
        float(np.abs(np.asarray(g, np.float64) - e).max())
        for g, e in zip(got, expected, strict=True)
    )


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


def numpy_model_inputs(transform: str, x: np.ndarray) -> np.ndarray:
    """What a FraudMLP with input transform ``transform`` feeds its scaler, in NumPy."""
    if transform == "raw":
        return np.asarray(x, dtype=np.float64)
    return numpy_time_of_day(x, log_amount=transform == "time_of_day_log_amount")[0]
