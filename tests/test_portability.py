"""A .keras file saved under this backend loads under every backend (subprocesses:
a backend cannot be switched inside a process). Each tox env saves under its own
backend, so the three envs together cover all 3 x 3 pairs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudkeras.backend import BACKENDS, is_installed
from fraudkeras.model import predict
from helpers import BACKEND

LOAD_AND_PREDICT = """
import sys, numpy as np
import fraudkeras
from fraudkeras.model import load_model, predict
model = load_model(sys.argv[1])
np.save(sys.argv[3], predict(model, np.load(sys.argv[2])))
"""


@pytest.mark.parametrize("target", BACKENDS)
def test_saved_model_loads_under(target: str, trained_run, tmp_path: Path) -> None:
    if not is_installed(target):
        pytest.skip(f"{target} is not installed")
    x = trained_run.split.test.x
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": target, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_PREDICT,
            str(trained_run.run_dir / "model.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "p.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    there = np.load(tmp_path / "p.npy")
    here = predict(trained_run.model, x)
    assert there.shape == here.shape
    assert np.max(np.abs(there - here)) <= 1e-5, f"{BACKEND} -> {target}"
