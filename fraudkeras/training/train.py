"""Training a FraudMLP end to end: data, split, class weights, fit, evaluation,
and (optionally) a run folder that records everything needed to reproduce it."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fraudkeras._core import interrupts
from fraudkeras._core.errors import (
    BackendError,
    OutputError,
    ParameterError,
    TrainingError,
)
from fraudkeras._core.files import check_output_dir, remove_stale_scratch, write_json
from fraudkeras._core.provenance import peak_rss_mb
from fraudkeras.analysis.drift import REFERENCE_FILE, reference_for
from fraudkeras.data.class_weights import ClassWeights, class_weights
from fraudkeras.data.parquet_table import is_multi_file, open_table
from fraudkeras.data.splits import Split, split
from fraudkeras.data.streaming import StreamSplit, scan, split_stream
from fraudkeras.data.streaming import summary as stream_summary
from fraudkeras.data.tables import TableTooLarge, Transactions, load_transactions
from fraudkeras.metrics.classification import Predictions, evaluate_predictions
from fraudkeras.modeling.features import apply_numpy
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.modeling.seeding import seed_everything
from fraudkeras.runs import checkpoint
from fraudkeras.runs.calibration import calibrate
from fraudkeras.runs.config import TrainConfig
from fraudkeras.runs.folder import RunFolder, data_record, stream_data_record, write_run_folder
from fraudkeras.runs.scoring import predictions, streamed_predictions
from fraudkeras.training import multihost, tf_group, torch_group, torch_workers
from fraudkeras.training.callbacks import EpochTimer, InterruptCheck
from fraudkeras.training.epochs import EpochEnd, fit_epochs
from fraudkeras.training.parallel import (
    Placement,
    data_parallel,
    require_devices,
    steps_per_execution_limit,
)
from fraudkeras.training.shards import Shard, own_shard

log = logging.getLogger("fraudkeras")

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
    report_dir: Path | None = None
    #: a streamed table's split (the parts in ``split`` are then bounded samples)
    streamed: StreamSplit | None = None
    #: the predictions on validation and test, whole (streamed or not)
    holdout: tuple[Predictions, Predictions] | None = None


@dataclass
class _Data:
    """The table a run trains on: in memory, or streamed from Parquet files."""

    source: str
    origin: str
    fingerprint: dict[str, Any]
    transactions: Transactions | None = None
    streamed: StreamSplit | None = None


@dataclass
class _Output:
    """Where a run goes and what is written beside it."""

    out: Path | None
    force: bool = False
    report: bool = True
    plots: bool = True
    verbose: int | str = 0
    callbacks: Sequence[keras.callbacks.Callback] = field(default_factory=tuple)
    # -- devices > 1 (torch: fraudkeras.training.torch_workers) --
    #: processes training together, one per device
    devices: int = 1
    #: False in a process of a group that is not rank 0: it writes no file
    primary: bool = True
    #: keep a streamed table's decoded training rows on disk after their first read
    stream_cache: bool = False


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
    ``hidden_units`` and the threshold policy). The model trains under the
    active Keras backend, stops early on validation PR-AUC (best weights
    restored) or on a NaN loss, and is evaluated on the test split with
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
    ``devices``: train data-parallel on that
    many devices, each global batch split across them, with the same result as
    one device within float rounding (``metrics["devices"]`` records it): JAX
    and TensorFlow in this process (:mod:`fraudkeras.training.parallel`), torch
    in worker processes (:mod:`fraudkeras.training.torch_workers`; a process
    started by ``torchrun`` joins its group). Under JAX, a process started with
    ``KERAS_DISTRIBUTION_*`` set joins that multi-process group and trains on
    all its devices (:mod:`fraudkeras.training.multihost`).
    """
    try:
        config = TrainConfig(**options)
    except TypeError as error:
        raise ParameterError(f"train(): {error}") from error
    # several processes (JAX, TensorFlow): joined before the engine computes anything
    group = multihost.join() or tf_group.join()
    require_devices(devices)  # before loading data
    if out is not None:
        check_output_dir(Path(out), force=force)
    output = _Output(None if out is None else Path(out), force, report, plots, verbose, callbacks)
    output.stream_cache = stream_cache
    output.devices = torch_group.check_devices(devices)
    if group is not None:
        _in_group(output, group, devices)
    if torch_group.launches(devices):
        table = _load(data, stream)  # a bad table fails here, before any worker starts
        return torch_workers.launch_train(table, output, config, isinstance(table, str))
    with torch_group.group(output):
        return _train(_load(data, stream), config, output)


def _in_group(output: _Output, group: multihost.Group, devices: int) -> None:
    """A JAX or TensorFlow multi-process run: all the group's devices; only
    process 0 writes."""
    if devices not in (1, group.devices):
        raise ParameterError(
            f"devices={devices}: this process is one of {group.processes} with "
            f"{group.devices} devices in all; leave devices at 1 or set it to {group.devices}"
        )
    output.devices, output.primary = group.devices, group.process == 0
    if not output.primary:
        output.verbose, output.report = 0, False
        log.setLevel(logging.WARNING)


def _load(data: str | os.PathLike[str] | Transactions, stream: bool) -> Transactions | str:
    """The table in memory, or its source when it is to be streamed."""
    if isinstance(data, Transactions):
        return data
    if stream or is_multi_file(data):
        return str(data)
    try:
        return load_transactions(data)
    except TableTooLarge as error:
        log.info("%s: streaming it instead", error)
        return str(data)


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
    group = multihost.join() or tf_group.join()  # before the engine computes anything
    devices = torch_group.check_devices(devices)
    require_devices(devices)
    target = Path(run_dir)
    partial = checkpoint.checkpoint_dir(target)
    record, state = checkpoint.load(partial)
    if target.exists():
        raise OutputError(f"{target}: exists already; there is nothing to resume")
    if torch_group.writes_output() and (group is None or group.process == 0):
        remove_stale_scratch(partial)  # a checkpoint save cut short by a kill
    if record["backend"] != keras.backend.backend():
        raise BackendError(
            f"{partial}: was trained under {record['backend']!r}; resume it under that "
            f"backend (now {keras.backend.backend()!r})"
        )
    config = TrainConfig.from_record(record["config"])
    source = data if data is not None else record["data"]
    streamed = bool(record["fingerprint"].get("stream"))
    table = str(source) if streamed else load_transactions(source)
    output = _Output(target, False, report, plots, verbose, callbacks, devices)
    output.stream_cache = stream_cache
    if group is not None:
        _in_group(output, group, devices)
    if torch_group.launches(devices):
        given = data if data is None or isinstance(data, str) else str(data)
        return torch_workers.launch_train(table, output, config, streamed, target, given)
    with torch_group.group(output):
        return _train(table, config, output, resume_from=state, expected=record["fingerprint"])


def _train(
    table: Transactions | str,
    config: TrainConfig,
    output: _Output,
    resume_from: checkpoint.TrainingState | None = None,
    expected: dict[str, Any] | None = None,
) -> TrainedRun:
    loaded = _prepare(table, config)
    parts = loaded.streamed.split if loaded.streamed else _split_memory(loaded, config)
    if expected is not None and loaded.fingerprint != expected:
        raise ParameterError(
            f"{loaded.origin}: differs from the data the run was training on; "
            "pass data= the same table"
        )
    if loaded.streamed is not None:
        n_train, frauds = loaded.streamed.n_train, loaded.streamed.train_frauds
        labels = np.repeat(np.array([0, 1], np.int8), [n_train - frauds, frauds])
    else:
        n_train, labels = len(parts.train.y), parts.train.y
    weights = class_weights(labels, config.class_weight)
    if config.batch_size > n_train:
        raise ParameterError(f"batch_size {config.batch_size} exceeds the {n_train} training rows")
    record = {
        "backend": keras.backend.backend(),
        "data": loaded.source,
        "fingerprint": loaded.fingerprint,
        "config": asdict(config),
    }
    shard = own_shard(loaded.streamed, config.batch_size)
    cache = _stream_cache(loaded.streamed, output, fresh=resume_from is None)
    with data_parallel(output.devices) as placement, cache:
        model = build_model(config, weights, parts.train.x, loaded.streamed)
        started = time.perf_counter()
        state, epoch_seconds = _fit_epochs(
            model, parts, config, output, record, resume_from, loaded.streamed, placement, shard
        )
        train_seconds = time.perf_counter() - started

    def predict_holdout() -> tuple[Predictions, Predictions]:
        if loaded.streamed is not None:
            return streamed_predictions(model, loaded.streamed)
        return predictions(model, parts.validation), predictions(model, parts.test)

    holdout, calibration = calibrate(model, predict_holdout, config.calibration)
    metrics = {
        "backend": keras.backend.backend(),
        "split": config.split,
        "class_weight": weights.as_dict(),
        "train_seconds": round(train_seconds, 3),
        "median_epoch_seconds": round(statistics.median(epoch_seconds), 4),
        "peak_rss_mb": peak_rss_mb(),
        "devices": output.devices,
        "epochs_run": state.epochs_done,
        "best_epoch": state.best_epoch + 1,
        **evaluate_predictions(*holdout, config.threshold_policy()),
        "calibration": calibration,
    }
    history = state.history
    run_dir = output.out or Path.cwd()
    if loaded.streamed is not None:
        summary = stream_summary(loaded.streamed)
        data = stream_data_record(loaded.source, loaded.fingerprint, summary, run_dir)
    else:
        assert loaded.transactions is not None
        data = data_record(loaded.transactions, loaded.fingerprint, parts, run_dir)
    run = TrainedRun(model, config, parts, weights, metrics, history, data)
    run.streamed, run.holdout = loaded.streamed, holdout
    if output.out is not None and output.primary:
        _save(run, loaded.transactions, output)
    return run


@contextlib.contextmanager
def _stream_cache(streamed: StreamSplit | None, output: _Output, fresh: bool) -> Iterator[None]:
    """With ``stream_cache``, a folder for a streamed table's decoded training
    rows while it trains: ``OUT.stream-cache/`` beside the checkpoint, or a
    temporary folder without ``out``. It is removed when training ends or fails
    for good, kept while a checkpoint remains to resume (and then only reused
    for the same table, split and chunks: its ``manifest.json``), and never
    inherited by a new run. Processes of a group other than the first read
    Parquet every epoch (they write no file)."""
    folder = None if output.out is None else output.out.with_name(output.out.name + ".stream-cache")
    if folder is not None and fresh and output.primary:
        shutil.rmtree(folder, ignore_errors=True)
    if streamed is None and output.stream_cache:
        log.info("stream cache: the table is in memory, nothing to cache")
    if streamed is None or not output.stream_cache or not output.primary:
        yield
        return
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="fraudkeras-stream-") as temporary:
            streamed.cache = Path(temporary)
            try:
                yield
            finally:
                streamed.cache = None
        return
    found = streamed.scan
    manifest = {
        "fingerprint": found.fingerprint,
        "split": [
            found.assignment.kind,
            found.assignment.seed,
            [repr(c) for c in found.assignment.cuts],
        ],
        "chunks": [[str(c.path), c.offset, c.rows] for c in found.table.chunks],
    }
    kept = folder / "manifest.json"
    if kept.is_file() and json.loads(kept.read_text()) != manifest:
        shutil.rmtree(folder, ignore_errors=True)  # another table's, or another split's
    folder.mkdir(parents=True, exist_ok=True)
    write_json(kept, manifest)
    streamed.cache = folder
    try:
        yield
    except BaseException:
        if output.out is not None and not checkpoint.checkpoint_dir(output.out).is_dir():
            shutil.rmtree(folder, ignore_errors=True)  # nothing left to resume
        raise
    finally:
        streamed.cache = None
    shutil.rmtree(folder, ignore_errors=True)


def _prepare(table: Transactions | str, config: TrainConfig) -> _Data:
    """Fingerprint the table; a streamed one is also split (two passes), with
    the moments of its transformed training rows for the scaler."""
    if isinstance(table, Transactions):
        fingerprint = table.fingerprint()  # hashes the whole table: once
        return _Data(table.source, table.origin, fingerprint, transactions=table)
    found = scan(open_table(table), config.split, config.split_seed)
    streamed = split_stream(found, lambda x: apply_numpy(x, config.features))
    log.info(
        "data: %s streamed, %d rows in %d files, %d frauds",
        table, found.fingerprint["rows"], len({c.path for c in found.table.chunks}),
        found.fingerprint["frauds"],
    )  # fmt: skip
    return _Data(found.table.source, str(table), found.fingerprint, streamed=streamed)


def _split_memory(loaded: _Data, config: TrainConfig) -> Split:
    assert loaded.transactions is not None
    return split(loaded.transactions, config.split, config.split_seed)


def build_model(
    config: TrainConfig,
    weights: ClassWeights,
    train_x: np.ndarray,
    streamed: StreamSplit | None = None,
) -> FraudMLP:
    """A compiled FraudMLP, seeded and with its scaler adapted to the training
    rows (for a streamed table: to the moments of all its training rows)."""
    seed_everything(config.seed)
    model = FraudMLP(
        config.hidden_units,
        class_weight=(weights.normal, weights.fraud),
        features=config.features,
    )
    if streamed is not None and streamed.moments is not None:
        assert streamed.moments.mean is not None
        model.set_scaler(streamed.moments.mean, streamed.moments.variance)
        n_train = streamed.n_train
    else:
        model.adapt(train_x)
        n_train = len(train_x)
    compile_model(model, config.learning_rate, math.ceil(n_train / config.batch_size))
    return model


def _fit_epochs(
    model: FraudMLP,
    parts: Split,
    config: TrainConfig,
    output: _Output,
    record: dict[str, Any],
    resume_from: checkpoint.TrainingState | None,
    streamed: StreamSplit | None = None,
    placement: Placement | None = None,
    shard: Shard | None = None,
) -> tuple[checkpoint.TrainingState, list[float]]:
    """Fit one epoch at a time, checkpointing and stopping early; leaves the
    model with the best epoch's weights."""
    partial = checkpoint.checkpoint_dir(output.out) if output.out is not None else None
    writes = partial if output.primary else None  # devices > 1: rank 0 writes checkpoints
    state = resume_from or checkpoint.TrainingState()
    best_weights = model.get_weights()
    if resume_from is not None and partial is not None:
        best_weights = checkpoint.restore(partial, model)
        log.info("resuming %s after epoch %d of %d", output.out, state.epochs_done, config.epochs)
    timer = EpochTimer()
    best = [best_weights]

    def end_of_epoch(epoch: int, logs: dict[str, Any]) -> bool:
        """Checkpoint and early stopping after each epoch; True stops ``fit``."""
        if not math.isfinite(logs.get("loss", math.nan)) or "val_pr_auc" not in logs:
            if writes is not None:
                shutil.rmtree(writes, ignore_errors=True)
            raise TrainingError(
                f"training diverged: loss became NaN/inf in epoch {epoch + 1} "
                f"(try a lower learning_rate than {config.learning_rate:g})"
            )
        logs["epoch_seconds"] = timer.seconds[-1]
        if state.record(logs, monitor="val_pr_auc", patience=config.patience):
            best[0] = model.get_weights()
        if writes is not None:
            checkpoint.save(writes, model, state, record, best[0])
        return state.stopped

    if state.epochs_done < config.epochs and not state.stopped:
        own = [keras.callbacks.TerminateOnNaN(), timer, InterruptCheck()]
        callbacks = [*own, *output.callbacks, EpochEnd(end_of_epoch)]
        placed = placement or Placement()
        fit_epochs(
            model, parts, config, state.epochs_done, callbacks, output.verbose,
            streamed=streamed, pad_to=placed.pad_to,
            processes=(placed.process, placed.processes), shard=shard,
        )  # fmt: skip
        interrupts.check()
    best_weights = best[0]
    model.set_weights(best_weights)
    return state, state.history["epoch_seconds"]


def _save(run: TrainedRun, transactions: Transactions | None, output: _Output) -> None:
    """Write the run folder, drop the checkpoint, then the report from memory."""
    assert output.out is not None
    config = {"backend": run.metrics["backend"], "data": run.data["source"], **asdict(run.config)}
    run.run_dir = write_run_folder(
        output.out,
        force=output.force,
        model=run.model,
        config=config,
        metrics=run.metrics,
        history=run.history,
        data=run.data,
        extra={REFERENCE_FILE: reference_for(run.model, run.split.train.x)},
    )
    shutil.rmtree(checkpoint.checkpoint_dir(output.out), ignore_errors=True)
    if output.report:
        from fraudkeras.analysis.report import write_report

        folder = RunFolder.of_trained(
            run.run_dir, transactions=transactions, split=run.split, model=run.model,
            holdout=run.holdout,
        )  # fmt: skip
        run.report_dir = write_report(folder, plots=output.plots, force=True)


def compile_model(model: FraudMLP, learning_rate: float, steps_per_epoch: int) -> None:
    """Adam, as the notebook; the one place that sets how training executes.

    ``steps_per_execution`` runs 64 train steps per compiled call on JAX and
    TensorFlow, cutting the per-step dispatch cost (JAX 0.25 -> 0.12 s/epoch,
    TensorFlow 0.99 -> 0.33 s on the full table; scripts/bench_training.py)
    without changing batches or results. Callbacks then see a batch end every
    64 steps. It never exceeds an epoch, or the progress bar counts past the end,
    and it is 1 under a TensorFlow strategy (:mod:`fraudkeras.training.parallel`).
    """
    per_call = steps_per_execution_limit(STEPS_PER_EXECUTION)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        steps_per_execution=max(1, min(per_call, steps_per_epoch)),
    )
