"""Training a FraudMLP end to end: :func:`train` and :func:`resume`, the two
entry points, and :func:`run_training`, what one process of a run does (data,
split, class weights, fit, evaluation, and with ``out`` a run folder that
records everything needed to reproduce it)."""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras

from fraudkeras._core.errors import BackendError, OutputError, ParameterError
from fraudkeras._core.files import check_output_dir, remove_stale_scratch
from fraudkeras._core.provenance import peak_rss_mb
from fraudkeras.backends import Group, current
from fraudkeras.data.class_weights import class_weights
from fraudkeras.data.streaming import summary as stream_summary
from fraudkeras.data.tables import Transactions, load_transactions
from fraudkeras.metrics.classification import Predictions, evaluate_predictions
from fraudkeras.runs import checkpoint
from fraudkeras.runs.calibration import calibrate
from fraudkeras.runs.config import TrainConfig
from fraudkeras.runs.folder import data_record, stream_data_record
from fraudkeras.runs.scoring import predictions, streamed_predictions
from fraudkeras.training import sources
from fraudkeras.training.building import build_model
from fraudkeras.training.epochs import fit_with_checkpoints, train_labels, training_batches
from fraudkeras.training.output import Output, TrainedRun
from fraudkeras.training.saving import save_run
from fraudkeras.training.shards import own_shard
from fraudkeras.training.stream_cache import stream_cache
from fraudkeras.training.workers import launch_train

log = logging.getLogger("fraudkeras")

__all__ = ["TrainedRun", "resume", "run_training", "train"]


def train(
    data: str | os.PathLike[str] | Transactions = "auto",
    *,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    report: bool = True,
    plots: bool = True,
    verbose: int | str = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    stream: bool = False,
    stream_cache: bool = False,
    devices: int = 1,
    **options: Any,
) -> TrainedRun:
    """Train, evaluate and (with ``out``) save a run folder with its report.

    ``options`` are the fields of :class:`TrainConfig` (``split``,
    ``class_weight``, ``epochs``, ``batch_size``, ``learning_rate``, ``seed``
    (initial weights and shuffling), ``split_seed``, ``patience``,
    ``hidden_units``, the levers ``embeddings`` and ``ensemble`` (see
    :class:`~fraudkeras.modeling.model.FraudMLP`), ``schedule``, ``ema``, ``calibration``
    and the threshold policy). The model trains under the active Keras backend,
    stops early on validation PR-AUC (best weights restored) or on a NaN loss, and
    is evaluated on the test split with
    scikit-learn. With ``out``, every epoch is checkpointed to ``OUT.partial/``
    so that an interrupted run can be finished with :func:`resume`, and
    ``OUT/report/`` is written unless ``report=False`` (``plots=False``: tables
    only). ``callbacks`` are extra Keras callbacks, passed to every epoch's ``fit``.
    ``stream=True`` (automatic for a folder or glob of Parquet files, and for a
    Parquet file too large for memory) streams the training rows
    (:mod:`fraudkeras.data.streaming`; validation and test are scored whole in
    a pass of their own, :mod:`fraudkeras.runs.scoring`, and each epoch's
    validation runs on a bounded sample of them); ``stream_cache=True`` keeps each
    chunk's decoded training rows on disk (in ``OUT.stream-cache/``, or a temporary
    folder) after the first epoch, so later epochs do not decode Parquet again.
    ``devices``: train data-parallel on that many devices, each global batch split
    across them, with the same result as one device within float rounding
    (``metrics["devices"]`` records it): JAX and TensorFlow in this process, torch
    in worker processes that PyTorch's launcher starts. A process started as one
    of a group (JAX's ``KERAS_DISTRIBUTION_*``, TensorFlow's ``TF_CONFIG``,
    ``torchrun``) trains as that group's member (:mod:`fraudkeras.backends`).
    """
    try:
        config = TrainConfig(**options)
    except TypeError as error:
        raise ParameterError(f"train(): {error}") from None
    backend = current()
    group = backend.join_group()  # before the engine computes anything
    backend.check_devices(devices)  # before loading data
    if out is not None:
        check_output_dir(Path(out), force=force)
    output = Output(None if out is None else Path(out), force, report, plots, verbose, callbacks)
    output.stream_cache, output.devices = stream_cache, devices
    if backend.launches(devices):
        table = sources.table_or_source(data, stream)  # a bad table fails before workers start
        return launch_train(table, output, config, isinstance(table, str))
    with backend.session() as session:
        _as_member(output, group or session, devices)
        return run_training(sources.table_or_source(data, stream), config, output)


def resume(
    run_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    report: bool = True,
    plots: bool = True,
    verbose: int | str = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    devices: int = 1,
    stream_cache: bool = False,
) -> TrainedRun:
    """Finish a run that was interrupted, from its last completed epoch.

    Needs the same backend and the same data (``data``: where it is now, if it
    moved) as the interrupted run; ends with the metrics an uninterrupted run
    with the same seed would have. ``devices`` and ``stream_cache`` as for
    :func:`train` (they may differ from the interrupted run's).
    """
    backend = current()
    group = backend.join_group()  # before the engine computes anything
    backend.check_devices(devices)
    target = Path(run_dir)
    partial = checkpoint.checkpoint_dir(target)
    record, state = checkpoint.load(partial)
    if target.exists():
        raise OutputError(f"{target}: exists already; there is nothing to resume")
    if backend.first_process():
        remove_stale_scratch(partial)  # a checkpoint save cut short by a kill
    if record["backend"] != backend.name:
        raise BackendError(
            f"{partial}: was trained under {record['backend']!r}; resume it under that "
            f"backend (now {backend.name!r})"
        )
    config = TrainConfig.from_record(record["config"])
    source = data if data is not None else record["data"]
    streamed = bool(record["fingerprint"].get("stream"))
    table = str(source) if streamed else load_transactions(source)
    output = Output(target, False, report, plots, verbose, callbacks, devices)
    output.stream_cache = stream_cache
    if backend.launches(devices):
        given = data if data is None or isinstance(data, str) else str(data)
        return launch_train(table, output, config, streamed, target, given)
    with backend.session() as session:
        _as_member(output, group or session, devices)
        return run_training(table, config, output, state, record["fingerprint"])


def _as_member(output: Output, group: Group | None, devices: int) -> None:
    """One process of a group: all the group's devices; only the first writes."""
    if group is None:
        return
    if devices not in (1, group.devices):
        raise ParameterError(
            f"devices={devices}: this process is one of {group.processes} with "
            f"{group.devices} devices in all; leave devices at 1 or set it to {group.devices}"
        )
    output.devices, output.primary = group.devices, group.process == 0
    if not output.primary:
        output.verbose, output.report = 0, False
        log.setLevel(logging.WARNING)


def run_training(
    table: Transactions | str,
    config: TrainConfig,
    output: Output,
    resume_from: checkpoint.TrainingState | None = None,
    expected: dict[str, Any] | None = None,
) -> TrainedRun:
    """Train in this process (alone, or as one process of a group) and evaluate;
    the first process writes the run folder."""
    backend = current()
    loaded = sources.load(table, config)
    parts = loaded.parts(config)
    if expected is not None and loaded.fingerprint != expected:
        raise ParameterError(
            f"{loaded.origin}: differs from the data the run was training on; "
            "pass data= the same table"
        )
    labels = train_labels(loaded.streamed, parts)
    weights = class_weights(labels, config.class_weight)
    if config.batch_size > len(labels):
        raise ParameterError(
            f"batch_size {config.batch_size} exceeds the {len(labels)} training rows"
        )
    record = {
        "backend": backend.name,
        "data": loaded.source,
        "fingerprint": loaded.fingerprint,
        "config": asdict(config),
    }
    shard = own_shard(loaded.streamed, config.batch_size)
    cache = stream_cache(loaded.streamed, output, fresh=resume_from is None)
    with backend.data_parallel(output.devices) as placement, cache:
        model = build_model(config, weights, parts.train.x, loaded.streamed)
        batches = training_batches(model, parts, config, placement, loaded.streamed, shard)
        started = time.perf_counter()
        state = fit_with_checkpoints(
            model, batches, parts.validation, config, output.out, record, output.callbacks,
            output.verbose, resume_from, writes=output.primary,
        )  # fmt: skip
        train_seconds = time.perf_counter() - started

    def predict_holdout() -> tuple[Predictions, Predictions]:
        if loaded.streamed is not None:
            return streamed_predictions(model, loaded.streamed)
        return predictions(model, parts.validation), predictions(model, parts.test)

    holdout, calibration = calibrate(model, predict_holdout, config.calibration)
    metrics = {
        "backend": backend.name,
        "split": config.split,
        "class_weight": weights.as_dict(),
        "train_seconds": round(train_seconds, 3),
        "median_epoch_seconds": round(statistics.median(state.history["epoch_seconds"]), 4),
        "peak_rss_mb": peak_rss_mb(),
        "devices": output.devices,
        "epochs_run": state.epochs_done,
        "best_epoch": state.best_epoch + 1,
        **evaluate_predictions(*holdout, config.threshold_policy()),
        "calibration": calibration,
    }
    run_dir = output.out or Path.cwd()
    if loaded.streamed is not None:
        summary = stream_summary(loaded.streamed)
        data = stream_data_record(loaded.source, loaded.fingerprint, summary, run_dir)
    else:
        assert loaded.transactions is not None
        data = data_record(loaded.transactions, loaded.fingerprint, parts, run_dir)
    run = TrainedRun(model, config, parts, weights, metrics, state.history, data)
    run.streamed, run.holdout = loaded.streamed, holdout
    if output.out is not None and output.primary:
        save_run(run, loaded.transactions, output)
    return run
