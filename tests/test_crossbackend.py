"""Numerical parity across backends, in the spirit of Keras's integration_tests/
numerical_test.py: the same initial weights (one .keras file), the same batches in
the same order, one epoch of Adam under each backend in its own process."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import keras
import numpy as np
import pytest
from backend_jobs import step_losses

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.errors import BackendError, ModelFileError
from fraudkeras._core.subprocesses import run_job
from fraudkeras.modeling.model import FraudMLP
from helpers import only_backend, run_test_job

# float32 with different kernels and summation orders, over 24 Adam steps: measured gaps
# loss 1.3e-6, weights 9.3e-7, predictions 3.6e-7 (README); a few times that
TOLERANCE = 5e-6


def test_other_job_failures_are_backend_errors() -> None:
    with pytest.raises(BackendError, match=r"fit-fixed under jax failed: .*Error"):
        run_test_job("jax", "fit-fixed", "too", "few")


def test_step_losses_undo_the_running_mean() -> None:
    per_step = np.array([0.9, 0.5, 0.25, 0.125])
    sizes = np.array([128, 128, 128, 56])  # 440 rows, batch 128
    running = np.cumsum(per_step * sizes) / np.cumsum(sizes)
    np.testing.assert_allclose(step_losses(running, 440, 128), per_step, rtol=1e-12)


def test_job_errors_keep_their_kind_across_the_process(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"absent\.keras: no such model file"):
        run_job("jax", "predict", tmp_path / "x.npy", tmp_path / "p.npz", tmp_path / "absent.keras")


@only_backend("jax")  # spawns every backend itself; once per tox run is enough
def test_one_epoch_agrees_across_backends(small, tmp_path: Path) -> None:
    installed = [b for b in BACKENDS if is_installed(b)]
    if len(installed) < 2:
        pytest.skip("needs at least two backends installed")
    x, y = small.features().astype(np.float32), small.labels()
    keras.utils.set_random_seed(0)
    initial = FraudMLP(class_weight=(1.0, 5.0))
    initial.adapt(x)
    initial.save(tmp_path / "initial.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)

    results = {}
    for backend in installed:
        out = tmp_path / f"{backend}.npz"
        run_test_job(backend, "fit-fixed", tmp_path / "initial.keras", tmp_path / "x.npy",
                  tmp_path / "y.npy", "128", out)  # fmt: skip
        results[backend] = dict(np.load(out))

    first = results[installed[0]]
    assert len(first["step_losses"]) == 24  # 3,000 rows in batches of 128
    weights = sorted(k for k in first if k.startswith("w"))
    assert not np.allclose(first["w3"], np.asarray(initial.get_weights()[3]))  # training moved them
    for a, b in combinations(installed, 2):
        ra, rb = results[a], results[b]
        loss_gap = np.max(np.abs(ra["step_losses"] - rb["step_losses"]))
        weight_gap = max(np.max(np.abs(ra[k] - rb[k])) for k in weights)
        prediction_gap = np.max(np.abs(ra["predictions"] - rb["predictions"]))
        gaps = f"{a} vs {b}: loss {loss_gap:.2e}, weights {weight_gap:.2e}, p {prediction_gap:.2e}"
        assert max(loss_gap, weight_gap, prediction_gap) <= TOLERANCE, gaps
        print(gaps)
