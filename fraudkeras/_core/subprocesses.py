"""Running work under another Keras backend. A process cannot switch backends, so
a job runs in a fresh ``python -m MODULE JOB ARGS...`` process with
``KERAS_BACKEND`` set; arrays travel through ``.npy``/``.npz`` files. The jobs
themselves live in :mod:`fraudkeras.jobs` (the top of the package, imported by
no one); this module only launches them and turns their failures back into
errors.

Every child process of fraudkeras (a job, a training worker) reports a failure
the same way: :func:`report_failure` writes its kind and message to a file in the
folder its parent named in ``FRAUDKERAS_ERRORS``, and the parent raises it again
with its own class (:func:`reported_error`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from fraudkeras._core import errors
from fraudkeras._core.backend import quiet_environment
from fraudkeras._core.errors import BackendError, FraudKerasError, first_line

JOBS_MODULE = "fraudkeras.jobs"
#: the folder where a child process leaves its failure (:func:`report_failure`)
ERRORS_VARIABLE = "FRAUDKERAS_ERRORS"
_TIMEOUT_S = 900


def report_failure(error: BaseException) -> None:
    """In a child process: leave ``error`` (its kind and first line) where the
    parent looks, one file per process; nothing when no parent asked."""
    folder = os.environ.get(ERRORS_VARIABLE)
    if not folder:
        return
    report = {"kind": type(error).__name__, "message": first_line(error)}
    with contextlib.suppress(OSError):  # the parent may be gone, and its folder
        Path(folder, f"error-{os.getpid()}.json").write_text(json.dumps(report))


def reported_error(folder: str | os.PathLike[str]) -> FraudKerasError | None:
    """The fraudkeras error a child process reported in ``folder`` (the first, by
    time), raised again with its own class; None when none did."""
    reports = sorted(Path(folder).glob("error-*.json"), key=lambda path: path.stat().st_mtime)
    for path in reports:
        report = json.loads(path.read_text())
        kind = getattr(errors, report["kind"], None)
        if isinstance(kind, type) and issubclass(kind, FraudKerasError):
            return kind(report["message"])
    return None


def exit_reason(code: int) -> str:
    """What an exit status says: a signal's name, or the status."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


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
    with tempfile.TemporaryDirectory(prefix="fraudkeras-job-") as folder:
        done = python_under(
            backend, module, job, *args, env={**(env or {}), ERRORS_VARIABLE: folder}
        )
        if done.returncode == 0:
            return
        reported = reported_error(folder)
    if reported is not None:
        raise reported
    lines = done.stderr.strip().splitlines()
    last = lines[-1] if lines else exit_reason(done.returncode)
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
