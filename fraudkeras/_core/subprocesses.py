"""Running work under another Keras backend. A process cannot switch backends, so
a job runs in a fresh ``python -m MODULE JOB ARGS...`` process with
``KERAS_BACKEND`` set; arrays travel through ``.npy``/``.npz`` files. The jobs
themselves live in :mod:`fraudkeras.jobs` (the top of the package, imported by
no one); this module only launches them and turns their failures back into
errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fraudkeras._core import errors
from fraudkeras._core.backend import quiet_environment
from fraudkeras._core.errors import BackendError

JOBS_MODULE = "fraudkeras.jobs"
_TIMEOUT_S = 900


def python_under(
    backend: str,
    module: str,
    *args: str | os.PathLike[str],
    timeout: float | None = _TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m module args...`` in a fresh process with ``KERAS_BACKEND=backend``."""
    environment = {**os.environ, **quiet_environment(), "KERAS_BACKEND": backend, **(env or {})}
    command = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)


def run_job(
    backend: str,
    job: str,
    *args: str | os.PathLike[str],
    module: str = JOBS_MODULE,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``job`` of ``module`` under ``backend`` in a subprocess.

    A FraudKerasError in the job is raised again here with its own class and
    message; any other failure becomes a BackendError naming the job.
    """
    done = python_under(backend, module, job, *args, env=env)
    if done.returncode == 0:
        return
    lines = done.stderr.strip().splitlines()
    last = lines[-1] if lines else "no output"
    kind, _, message = last.partition(": ")
    error_class = getattr(errors, kind, None)
    if isinstance(error_class, type) and issubclass(error_class, errors.FraudKerasError):
        raise error_class(message)
    raise BackendError(f"{job} under {backend} failed: {last}")


def predict_under(
    backend: str, model_paths: list[Path], features: np.ndarray, scratch: Path
) -> list[np.ndarray]:
    """Probabilities on ``features`` of each ``.keras`` model, all loaded in one
    ``backend`` process (the ``predict`` job)."""
    x_path, out_path = scratch / f"x-{backend}.npy", scratch / f"p-{backend}.npz"
    np.save(x_path, features)
    run_job(backend, "predict", x_path, out_path, *model_paths)
    with np.load(out_path) as saved:
        return [saved[f"p{i}"] for i in range(len(model_paths))]
