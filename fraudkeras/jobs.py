"""Jobs that run under another backend, as ``python -m fraudkeras.jobs JOB ARGS``
(launched by :mod:`fraudkeras._core.subprocesses`; imported by no module):

- ``predict X.npy OUT.npz MODEL...``: load each ``.keras`` file and write its fraud
  probabilities on X (``p0``, ``p1``, ... in argument order);
- ``export RUN_DIR FORMATS FORCE [DATA]``: :func:`fraudkeras.deploy.export.export`
  under TensorFlow;
- ``parity-prepare DATA FOLDER STEPS BATCH SEED`` and ``parity-fit FOLDER OUT.npz``:
  the two halves of ``fraudkeras parity`` (:mod:`fraudkeras.parity`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from fraudkeras._core import errors
from fraudkeras._core.backend import default_backend, use_backend
from fraudkeras._core.subprocesses import report_failure


def _predict(x_path: str, out_path: str, *model_paths: str) -> None:
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    models = [load_model(path) for path in model_paths]
    x = np.load(x_path)
    arrays: dict[str, Any] = {
        f"p{i}": fraud_probabilities(model, x) for i, model in enumerate(models)
    }
    np.savez(out_path, **arrays)


def _export(run_dir: str, formats: str, force: str, data: str = "") -> None:
    from fraudkeras.deploy.export import export

    export(run_dir, tuple(formats.split(",")), force=bool(force), data=data or None)


def _parity_prepare(*args: str) -> None:
    from fraudkeras.parity import prepare

    prepare(*args)


def _parity_fit(*args: str) -> None:
    from fraudkeras.parity import fit_under_backend

    fit_under_backend(*args)


JOBS: dict[str, Callable[..., None]] = {
    "predict": _predict,
    "export": _export,
    "parity-prepare": _parity_prepare,
    "parity-fit": _parity_fit,
}


def run(jobs: dict[str, Callable[..., None]], argv: list[str]) -> int:
    """Run one job under ``$KERAS_BACKEND``; a FraudKerasError is reported to the
    parent (:func:`~fraudkeras._core.subprocesses.report_failure`), which raises it
    again."""
    job, *args = argv
    try:
        use_backend(os.environ.get("KERAS_BACKEND") or default_backend())
        jobs[job](*args)
    except errors.FraudKerasError as error:
        report_failure(error)
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(run(JOBS, sys.argv[1:]))
