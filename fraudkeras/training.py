"""Training a FraudMLP end to end: data, split, class weights, fit, evaluation,
and (optionally) a run folder that records everything needed to reproduce it."""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fraudkeras import rundir
from fraudkeras.class_weights import DEFAULT_STRATEGY, ClassWeights, class_weights
from fraudkeras.data import Transactions, load_transactions
from fraudkeras.errors import ParameterError, TrainingError
from fraudkeras.evaluation import evaluate_predictions
from fraudkeras.model import DEFAULT_HIDDEN_UNITS, FraudMLP, predict
from fraudkeras.splits import SPLIT_KINDS, Split, split
from fraudkeras.validation import check_choice, check_float, check_int

log = logging.getLogger("fraudkeras")


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a trained model; validated on construction.
    Defaults follow the notebook: Adam 1e-3, batch 256, 10 epochs, seed 42."""

    split: str = "stratified"
    class_weight: str = DEFAULT_STRATEGY
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 42
    split_seed: int = 42
    patience: int = 5
    hidden_units: tuple[int, ...] = field(default=DEFAULT_HIDDEN_UNITS)

    def __post_init__(self) -> None:
        check_choice("split", self.split, SPLIT_KINDS)
        if not isinstance(self.class_weight, str):
            raise ParameterError(f"class_weight must be a string, got {self.class_weight!r}")
        class_weights(np.array([0, 1]), self.class_weight)  # rejects unknown strategies early
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_float("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        check_int("seed", self.seed, minimum=0)
        check_int("split_seed", self.split_seed, minimum=0)
        check_int("patience", self.patience, minimum=0)
        if not self.hidden_units:
            raise ParameterError("hidden_units must name at least one layer size")
        for units in self.hidden_units:
            check_int("hidden_units", units, minimum=1)
        object.__setattr__(self, "hidden_units", tuple(self.hidden_units))


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
    **options: Any,
) -> TrainedRun:
    """Train, evaluate and (with ``out``) save a run folder.

    ``options`` are the fields of :class:`TrainConfig` (``split``,
    ``class_weight``, ``epochs``, ``batch_size``, ``learning_rate``, ``seed``
    (initial weights and shuffling), ``split_seed``, ``patience``,
    ``hidden_units``). The model trains under the active Keras
    backend, stops early on validation PR-AUC (best weights restored) or on a
    NaN loss, and is evaluated on the test split with scikit-learn.
    """
    try:
        config = TrainConfig(**options)
    except TypeError as error:
        raise ParameterError(f"train(): {error}") from error
    if out is not None:
        rundir.check_output_dir(Path(out), force=force)
    transactions = data if isinstance(data, Transactions) else load_transactions(data)
    parts = split(transactions, config.split, config.split_seed)
    weights = class_weights(parts.train.y, config.class_weight)
    if config.batch_size > len(parts.train.y):
        raise ParameterError(
            f"batch_size {config.batch_size} exceeds the {len(parts.train.y)} training rows"
        )

    keras.utils.set_random_seed(config.seed)
    model = FraudMLP(config.hidden_units, class_weight=(weights.normal, weights.fraud))
    model.adapt(parts.train.x)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_pr_auc", mode="max", patience=config.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    fitted = model.fit(
        parts.train.x,
        parts.train.y,
        validation_data=(parts.validation.x, parts.validation.y),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=[stopper, keras.callbacks.TerminateOnNaN()],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    history = {name: [float(v) for v in values] for name, values in fitted.history.items()}
    losses = history.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        raise TrainingError(
            f"training diverged: loss became NaN/inf in epoch {len(losses)} "
            f"(try a lower learning rate than {config.learning_rate:g})"
        )

    evaluation = evaluate_predictions(
        (parts.validation.y, predict(model, parts.validation.x)),
        (parts.test.y, predict(model, parts.test.x)),
    )
    metrics = {
        "backend": keras.backend.backend(),
        "split": config.split,
        "class_weight": weights.as_dict(),
        "train_seconds": round(train_seconds, 3),
        "epochs_run": len(losses),
        "best_epoch": int(stopper.best_epoch) + 1,
        **evaluation,
    }
    data_record = {
        "source": transactions.source,
        "origin": transactions.origin,
        "fingerprint": transactions.fingerprint(),
        "split": parts.summary(),
    }
    result = TrainedRun(model, config, parts, weights, metrics, history, data_record)
    if out is not None:
        result.run_dir = save_run(result, Path(out), force=force)
    return result


def save_run(run: TrainedRun, target: Path, *, force: bool = False) -> Path:
    """Write the run folder atomically (see :func:`fraudkeras.rundir.atomic_dir`)."""
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
