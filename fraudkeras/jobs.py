"""Running work under another Keras backend. A process cannot switch backends, so
each job runs in a fresh ``python -m fraudkeras.jobs`` process with
``KERAS_BACKEND`` set; arrays travel through ``.npy``/``.npz`` files.

Jobs:
- ``predict X.npy OUT.npz MODEL...``: load each ``.keras`` file and write its fraud
  probabilities on X (``p0``, ``p1``, ... in argument order);
- ``fit-fixed MODEL X.npy Y.npy BATCH OUT.npz``: one epoch of ``fit`` from the model's
  weights, batches in file order (no shuffling), Adam 1e-3; writes per-step losses,
  final weights and predictions on X. The parity test compares these across backends;
- ``export RUN_DIR FORMATS FORCE``: :func:`fraudkeras.deploy.export.export` under TensorFlow;
- ``attribute MODEL X.npy OUT.npz``: the model's attributions on X by every method
  (one array per method name), through this backend's autodiff
  (:mod:`fraudkeras.analysis.attribution`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core import errors
from fraudkeras._core.backend import use_backend
from fraudkeras._core.errors import BackendError

_TIMEOUT_S = 900


def python_under(
    backend: str, module: str, *args: str | os.PathLike[str], timeout: float | None = _TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m module args...`` in a fresh process with ``KERAS_BACKEND=backend``."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def run_under(backend: str, job: str, *args: str | os.PathLike[str]) -> None:
    """Run ``job`` under ``backend`` in a subprocess.

    A FraudKerasError in the job is raised again here with its own class and
    message; any other failure becomes a BackendError naming the job.
    """
    done = python_under(backend, "fraudkeras.jobs", job, *args)
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
    """Probabilities on ``features`` of each model, all loaded in one ``backend`` process."""
    x_path, out_path = scratch / f"x-{backend}.npy", scratch / f"p-{backend}.npz"
    np.save(x_path, features)
    run_under(backend, "predict", x_path, out_path, *model_paths)
    with np.load(out_path) as saved:
        return [saved[f"p{i}"] for i in range(len(model_paths))]


def _predict(x_path: str, out_path: str, *model_paths: str) -> None:
    from fraudkeras.modeling.model import load_model, predict

    models = [load_model(path) for path in model_paths]
    x = np.load(x_path)
    arrays: dict[str, Any] = {f"p{i}": predict(model, x) for i, model in enumerate(models)}
    np.savez(out_path, **arrays)


def _fit_fixed(model_path: str, x_path: str, y_path: str, batch_size: str, out_path: str) -> None:
    import keras

    from fraudkeras.modeling.model import load_model, predict

    model = load_model(model_path)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    running: list[float] = []

    class _Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            running.append(float((logs or {})["loss"]))

    x, y = np.load(x_path), np.load(y_path)
    size = int(batch_size)
    model.fit(x, y, batch_size=size, epochs=1, shuffle=False, verbose=0, callbacks=[_Record()])
    arrays: dict[str, Any] = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays["step_losses"] = step_losses(np.array(running), len(y), size)
    arrays["predictions"] = predict(model, x)
    np.savez(out_path, **arrays)


def step_losses(running_means: np.ndarray, rows: int, batch_size: int) -> np.ndarray:
    """Per-batch losses from the loss tracker's running, size-weighted means."""
    sizes = np.minimum(batch_size, rows - batch_size * np.arange(len(running_means)))
    totals = running_means.astype(np.float64) * np.cumsum(sizes)
    return np.diff(totals, prepend=0.0) / sizes


def _export(run_dir: str, formats: str, force: str) -> None:
    from fraudkeras.deploy.export import export

    export(run_dir, tuple(formats.split(",")), force=bool(force))


def _attribute(model_path: str, x_path: str, out_path: str) -> None:
    from fraudkeras.analysis.attribution import METHODS, attributions
    from fraudkeras.modeling.model import load_model

    model, x = load_model(model_path), np.load(x_path)
    arrays: dict[str, Any] = {m: attributions(model, x, method=m) for m in METHODS}
    np.savez(out_path, **arrays)


def attributions_under(
    backend: str, model_path: Path, features: np.ndarray, scratch: Path
) -> dict[str, np.ndarray]:
    """Attributions of a ``.keras`` model on ``features`` by every method, under ``backend``."""
    x_path, out_path = scratch / f"x-{backend}.npy", scratch / f"a-{backend}.npz"
    np.save(x_path, features)
    run_under(backend, "attribute", model_path, x_path, out_path)
    with np.load(out_path) as saved:
        return {method: np.asarray(saved[method]) for method in saved.files}


_JOBS: dict[str, Callable[..., None]] = {
    "attribute": _attribute,
    "predict": _predict,
    "fit-fixed": _fit_fixed,
    "export": _export,
}


def main(argv: list[str]) -> int:
    job, *args = argv
    try:
        use_backend(os.environ.get("KERAS_BACKEND", "jax"))
        _JOBS[job](*args)
    except errors.FraudKerasError as error:  # one line the parent turns back into the error
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
