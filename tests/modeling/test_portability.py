"""A .keras file saved under this backend loads under every backend (subprocesses:
a backend cannot be switched inside a process). Each tox env saves under its own
backend, so the three envs together cover all 3 x 3 pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.subprocesses import predict_under
from fraudkeras.modeling.model import fraud_probabilities
from helpers import BACKEND


@pytest.mark.parametrize("target", BACKENDS)
def test_saved_model_loads_under(target: str, trained_run, tmp_path: Path) -> None:
    if not is_installed(target):
        pytest.skip(f"{target} is not installed")
    x = trained_run.split.test.x
    (there,) = predict_under(target, [trained_run.run_dir / "model.keras"], x, tmp_path)
    here = fraud_probabilities(trained_run.model, x)
    assert there.shape == here.shape
    assert np.max(np.abs(there - here)) <= 1e-5, f"{BACKEND} -> {target}"
