"""Test-only jobs run under another backend, as ``python -m backend_jobs JOB ARGS``
with ``tests/`` on ``PYTHONPATH`` (see :func:`helpers.run_test_job`):

- ``fit-fixed MODEL X.npy Y.npy BATCH OUT.npz``: one epoch of ``fit`` from the
  model's weights, batches in file order (no shuffling), Adam 1e-3; writes per-step
  losses, final weights and predictions on X. The parity test compares these;
- ``attribute MODEL X.npy OUT.npz``: the model's attributions on X by every method.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from fraudkeras.jobs import run


def _fit_fixed(model_path: str, x_path: str, y_path: str, batch_size: str, out_path: str) -> None:
    import keras

    from fraudkeras.modeling.model import fraud_probabilities, load_model

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
    arrays["predictions"] = fraud_probabilities(model, x)
    np.savez(out_path, **arrays)


def step_losses(running_means: np.ndarray, rows: int, batch_size: int) -> np.ndarray:
    """Per-batch losses from the loss tracker's running, size-weighted means."""
    sizes = np.minimum(batch_size, rows - batch_size * np.arange(len(running_means)))
    totals = running_means.astype(np.float64) * np.cumsum(sizes)
    return np.diff(totals, prepend=0.0) / sizes


def _attribute(model_path: str, x_path: str, out_path: str) -> None:
    from fraudkeras.analysis.attribution import METHODS, attributions
    from fraudkeras.modeling.model import load_model

    model, x = load_model(model_path), np.load(x_path)
    arrays: dict[str, Any] = {m: attributions(model, x, method=m) for m in METHODS}
    np.savez(out_path, **arrays)


if __name__ == "__main__":
    raise SystemExit(run({"fit-fixed": _fit_fixed, "attribute": _attribute}, sys.argv[1:]))
