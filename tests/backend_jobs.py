"""Test-only jobs run under another backend, as ``python -m backend_jobs JOB ARGS``
with ``tests/`` on ``PYTHONPATH`` (see :func:`helpers.run_test_job`):

- ``attribute MODEL X.npy OUT.npz``: the model's attributions on X by every method;
- ``train-run DATA RUN_DIR``: one epoch of :func:`fraudkeras.train` (its compile
  configuration, ``steps_per_execution`` included, saved in ``RUN_DIR/model.keras``);
- ``use-loaded X.npy Y.npy OUT_DIR EXPORT MODEL...``: each ``.keras`` loaded by plain
  ``keras.saving.load_model``, as a user would: ``predict``, ``evaluate``, then
  ``compile`` + ``fit`` (saved as ``OUT_DIR/tuned-NAME-BACKEND.keras``, NAME the
  model's folder); writes ``OUT_DIR/NAME-BACKEND.npz``. With EXPORT non-empty
  (under TensorFlow), then exports every ``OUT_DIR/tuned-*.keras`` as the package's
  SavedModel, reopens it and writes its probabilities on X beside it
  (``.exported.npy``);
- ``parallel-epoch DEVICES DATA BATCH INIT.npz OUT.npz``: one epoch of
  :func:`fraudkeras.training.epochs.fit_epochs` on DEVICES devices (prepared
  before the backend starts), plain SGD, from the initial weights in INIT.npz
  (written there when it does not exist yet); writes the final weights, the
  epoch's logs and how many devices held the variables.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras.jobs import run


def _train_run(data: str, out_dir: str) -> None:
    from fraudkeras.training.train import train

    train(data, out=out_dir, epochs=1, batch_size=32, seed=0, report=False)


def _use_loaded(x_path: str, y_path: str, out_dir: str, export: str, *model_paths: str) -> None:
    import keras

    import fraudkeras  # noqa: F401  (registers FraudMLP, as a user's script does)

    x, y = np.load(x_path), np.load(y_path)
    backend = keras.backend.backend()
    for path in model_paths:
        name = Path(path).parent.name
        model = keras.saving.load_model(path)  # compiled from the file's configuration
        before = model.predict(x, verbose=0, batch_size=256).reshape(-1)
        evaluated = model.evaluate(x, y, verbose=0, batch_size=256, return_dict=True)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=8)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
        after = model.predict(x, verbose=0, batch_size=256).reshape(-1)
        model.save(Path(out_dir) / f"tuned-{name}-{backend}.keras")
        np.savez(
            Path(out_dir) / f"{name}-{backend}.npz", before=before, after=after,
            loss=np.float64(evaluated["loss"]), fit_loss=np.asarray(history.history["loss"]),
        )  # fmt: skip
    if export:  # under TensorFlow: every model tuned so far, as the package's SavedModel
        from fraudkeras.deploy.artifacts import open_artifact
        from fraudkeras.deploy.export import write_saved_model

        for path in sorted(Path(out_dir).glob("tuned-*.keras")):
            folder = path.with_suffix(".saved_model")
            write_saved_model(keras.saving.load_model(path), folder)
            np.save(path.with_suffix(".exported.npy"), open_artifact(folder).predict(x))


def _attribute(model_path: str, x_path: str, out_path: str) -> None:
    from fraudkeras.analysis.attribution import METHODS, attributions
    from fraudkeras.modeling.model import load_model

    model, x = load_model(model_path), np.load(x_path)
    arrays: dict[str, Any] = {m: attributions(model, x, method=m) for m in METHODS}
    np.savez(out_path, **arrays)


def _parallel_epoch(
    devices: str, data: str, batch_size: str, init_path: str, out_path: str
) -> None:
    from fraudkeras._core.devices import prepare_devices

    n = int(devices)
    prepare_devices(os.environ["KERAS_BACKEND"], n)  # before keras starts the engine
    import keras

    from fraudkeras.backends import current
    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import FraudMLP
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.epochs import fit_epochs, training_batches

    config = TrainConfig(epochs=1, batch_size=int(batch_size), seed=3, class_weight="balanced")
    parts = split(load_transactions(data), config.split, config.split_seed)
    weights = class_weights(parts.train.y, config.class_weight)
    logs: dict[str, float] = {}

    class _Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, epoch_logs: dict | None = None) -> None:
            logs.update({k: float(v) for k, v in (epoch_logs or {}).items()})

    with current().data_parallel(n) as placement:
        model = FraudMLP(class_weight=(weights.normal, weights.fraud), features=config.features)
        model.adapt(parts.train.x)
        if Path(init_path).exists():
            with np.load(init_path) as saved:
                model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
        else:
            np.savez(init_path, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        steps = math.ceil(len(parts.train.y) / config.batch_size)
        model.compile(  # at most an epoch per call (the model caps it under a TF strategy)
            optimizer=keras.optimizers.SGD(learning_rate=0.05), steps_per_execution=steps
        )
        batches = training_batches(model, parts, config, placement)
        fit_epochs(model, batches, config, 0, [_Record()], 0, parts.validation)
    arrays: dict[str, Any] = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"log_{k}": np.float64(v) for k, v in logs.items()})
    arrays["replicas"] = np.int64(_replicas(model))
    np.savez(out_path, **arrays)


def _replicas(model: Any) -> int:
    """How many devices hold the model's variables (each holds all of them)."""
    import keras

    variable = model.trainable_variables[0]
    if keras.backend.backend() == "jax":
        return len(variable.value.sharding.device_set)
    return int(model.distribute_strategy.num_replicas_in_sync)


if __name__ == "__main__":
    jobs = {
        "attribute": _attribute,
        "parallel-epoch": _parallel_epoch,
        "train-run": _train_run,
        "use-loaded": _use_loaded,
    }
    raise SystemExit(run(jobs, sys.argv[1:]))
