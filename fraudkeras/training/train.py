"""Training a FraudMLP end to end: data, split, class weights, fit, evaluation,
and (optionally) a run folder that records everything needed to reproduce it."""

from __future__ import annotations

import logging
import math
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fraudkeras._core import files as rundir
from fraudkeras._core import interrupts
from fraudkeras._core.errors import (
    BackendError,
    DataError,
    OutputError,
    ParameterError,
    TrainingError,
)
from fraudkeras.analysis.drift import REFERENCE_FILE, reference_for
from fraudkeras.analysis.evaluation import evaluate_predictions, predictions
from fraudkeras.data.class_weights import ClassWeights, class_weights
from fraudkeras.data.splits import Split, split
from fraudkeras.data.tables import Transactions, load_transactions
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs import checkpoint
from fraudkeras.runs.config import TrainConfig

log = logging.getLogger("fraudkeras")

#: metrics.json fields that are measurements of this machine, not results: every
#: other number is identical when a run is repeated with the same seed and backend.
MEASUREMENTS = ("train_seconds", "median_epoch_seconds", "peak_rss_mb")
#: Train steps per compiled call; Keras's torch trainer runs eagerly and accepts only 1.
STEPS_PER_EXECUTION = 1 if keras.backend.backend() == "torch" else 64


@dataclass
class TrainedRun:
    """What :func:`train` returns: the model, its metrics and how it was made."""

    model: FraudMLP
    config: TrainConfig
    split: Split
    class_weights: ClassWeights
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    data: dict[str, Any]
    run_dir: Path | None = None


def train(
    data: str | os.PathLike[str] | Transactions = "auto",
    *,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    verbose: int | str = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    **options: Any,
) -> TrainedRun:
    """Train, evaluate and (with ``out``) save a run folder.

    ``options`` are the fields of :class:`TrainConfig` (``split``,
    ``class_weight``, ``epochs``, ``batch_size``, ``learning_rate``, ``seed``
    (initial weights and shuffling), ``split_seed``, ``patience``,
    ``hidden_units``). The model trains under the active Keras
    backend, stops early on validation PR-AUC (best weights restored) or on a
    NaN loss, and is evaluated on the test split with scikit-learn. With
    ``out``, every epoch is checkpointed to ``OUT.partial/`` so that an
    interrupted run can be finished with :func:`resume`. ``callbacks`` are
    extra Keras callbacks, passed to every epoch's ``fit``.
    """
    try:
        config = TrainConfig(**options)
    except TypeError as error:
        raise ParameterError(f"train(): {error}") from error
    if out is not None:
        rundir.check_output_dir(Path(out), force=force)
    transactions = data if isinstance(data, Transactions) else load_transactions(data)
    return _train(transactions, config, out, force, verbose, callbacks)


def resume(
    run_dir: str | os.PathLike[str],
    *,
    verbose: int | str = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainedRun:
    """Finish a run that was interrupted, from its last completed epoch.

    Needs the same backend and the same data as the interrupted run; ends with
    the metrics an uninterrupted run with the same seed would have.
    """
    target = Path(run_dir)
    partial = checkpoint.checkpoint_dir(target)
    record, state = checkpoint.load(partial)
    if target.exists():
        raise OutputError(f"{target}: exists already; there is nothing to resume")
    rundir.remove_stale_scratch(partial)  # a checkpoint save cut short by a kill
    if record["backend"] != keras.backend.backend():
        raise BackendError(
            f"{partial}: was trained under {record['backend']!r}; resume it with "
            f"--backend {record['backend']} (now {keras.backend.backend()!r})"
        )
    config = TrainConfig.from_record(record["config"])
    transactions = load_transactions(record["data"])
    if transactions.fingerprint() != record["fingerprint"]:
        raise DataError(f"{record['data']}: differs from the data {target} was training on")
    return _train(transactions, config, target, False, verbose, callbacks, resume_from=state)


def _train(
    transactions: Transactions,
    config: TrainConfig,
    out: str | os.PathLike[str] | None,
    force: bool,
    verbose: int | str,
    callbacks: Sequence[keras.callbacks.Callback],
    resume_from: checkpoint.TrainingState | None = None,
) -> TrainedRun:
    parts = split(transactions, config.split, config.split_seed)
    weights = class_weights(parts.train.y, config.class_weight)
    if config.batch_size > len(parts.train.y):
        raise ParameterError(
            f"batch_size {config.batch_size} exceeds the {len(parts.train.y)} training rows"
        )

    keras.utils.set_random_seed(config.seed)
    model = FraudMLP(
        config.hidden_units,
        class_weight=(weights.normal, weights.fraud),
        features=config.features,
    )
    model.adapt(parts.train.x)
    compile_model(model, config.learning_rate, math.ceil(len(parts.train.y) / config.batch_size))
    partial = checkpoint.checkpoint_dir(Path(out)) if out is not None else None
    state = resume_from or checkpoint.TrainingState()
    best_weights = model.get_weights()
    if resume_from is not None and partial is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(partial / checkpoint.BEST_WEIGHTS)
        best_weights = model.get_weights()
        model.load_weights(partial / checkpoint.LATEST_WEIGHTS)
        log.info("resuming %s after epoch %d of %d", out, state.epochs_done, config.epochs)
    fingerprint = transactions.fingerprint()  # hashes the whole table: once
    run_record = {
        "backend": keras.backend.backend(),
        "data": transactions.source,
        "fingerprint": fingerprint,
        "config": asdict(config),
    }

    timer = EpochTimer()
    started = time.perf_counter()
    while state.epochs_done < config.epochs and not state.stopped:
        epoch = state.epochs_done
        # Our own shuffle, a pure function of (seed, epoch): Keras shuffles with
        # each backend's global RNG, which a resumed process could not replay.
        order = np.random.default_rng([config.seed, epoch]).permutation(len(parts.train.y))
        fitted = model.fit(
            parts.train.x[order],
            parts.train.y[order],
            validation_data=(parts.validation.x, parts.validation.y),
            initial_epoch=epoch,
            epochs=epoch + 1,
            batch_size=config.batch_size,
            shuffle=False,
            callbacks=[keras.callbacks.TerminateOnNaN(), timer, InterruptCheck(), *callbacks],
            verbose=verbose,
        )
        interrupts.check()
        logs = {name: values[-1] for name, values in fitted.history.items() if values}
        if not math.isfinite(logs.get("loss", math.nan)) or "val_pr_auc" not in logs:
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
            raise TrainingError(
                f"training diverged: loss became NaN/inf in epoch {epoch + 1} "
                f"(try a lower learning rate than {config.learning_rate:g})"
            )
        logs["epoch_seconds"] = timer.seconds[-1]
        improved = state.record(logs, monitor="val_pr_auc", patience=config.patience)
        if improved:
            best_weights = model.get_weights()
        if partial is not None:
            checkpoint.save(partial, model, state, run_record, improved)
    train_seconds = time.perf_counter() - started
    model.set_weights(best_weights)
    history = state.history

    evaluation = evaluate_predictions(
        predictions(model, parts.validation),
        predictions(model, parts.test),
        config.threshold_policy(),
    )
    metrics = {
        "backend": keras.backend.backend(),
        "split": config.split,
        "class_weight": weights.as_dict(),
        "train_seconds": round(train_seconds, 3),
        "median_epoch_seconds": round(statistics.median(history["epoch_seconds"]), 4),
        "peak_rss_mb": peak_rss_mb(),
        "epochs_run": state.epochs_done,
        "best_epoch": state.best_epoch + 1,
        **evaluation,
    }
    data_record = {
        "source": transactions.source,
        "origin": transactions.origin,
        "fingerprint": fingerprint,
        "split": parts.summary(),
    }
    result = TrainedRun(model, config, parts, weights, metrics, history, data_record)
    if out is not None:
        result.run_dir = save_run(result, Path(out), force=force)
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
    return result


def compile_model(model: FraudMLP, learning_rate: float, steps_per_epoch: int) -> None:
    """Adam, as the notebook; the one place that sets how training executes.

    ``steps_per_execution`` runs 64 train steps per compiled call on JAX and
    TensorFlow, cutting the per-step dispatch cost (JAX 0.25 -> 0.12 s/epoch,
    TensorFlow 0.99 -> 0.33 s on the full table; scripts/bench_training.py)
    without changing batches or results. Callbacks then see a batch end every
    64 steps. It never exceeds an epoch, or the progress bar counts past the end.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        steps_per_execution=max(1, min(STEPS_PER_EXECUTION, steps_per_epoch)),
    )


class InterruptCheck(keras.callbacks.Callback):
    """Re-raises a Ctrl-C that a finalizer swallowed (see :mod:`fraudkeras._core.interrupts`)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch (the first includes compilation)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(round(time.perf_counter() - self._start, 4))


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def save_run(run: TrainedRun, target: Path, *, force: bool = False) -> Path:
    """Write the run folder atomically (see :func:`fraudkeras._core.files.atomic_dir`)."""
    with rundir.atomic_dir(target, force=force) as scratch:
        run.model.save(scratch / rundir.MODEL_FILE)
        config = {
            "backend": run.metrics["backend"],
            "data": run.data["source"],
            **asdict(run.config),
        }
        rundir.write_json(scratch / rundir.CONFIG_FILE, config)
        rundir.write_json(scratch / rundir.METRICS_FILE, run.metrics)
        rundir.write_json(scratch / rundir.HISTORY_FILE, run.history)
        rundir.write_json(scratch / rundir.DATA_FILE, run.data)
        rundir.write_json(scratch / rundir.ENVIRONMENT_FILE, environment())
        rundir.write_json(scratch / REFERENCE_FILE, reference_for(run.model, run.split.train.x))
    return target


def environment() -> dict[str, str]:
    """Versions of Python and every library that can change a result."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (
        "fraudkeras",
        "keras",
        "numpy",
        "polars",
        "scikit-learn",
        "jax",
        "jaxlib",
        "torch",
        "tensorflow",
        "tensorflow-cpu",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
