"""All of a run's epochs in one ``fit``, with the per-epoch work in callbacks.

``fit`` once per epoch re-created Keras's data adapter and iterator every epoch
(on torch a ``DataLoader``, on TensorFlow a ``tf.data`` pipeline and the compiled
function's state); one ``fit`` over all epochs reads each epoch's seeded order
from :mod:`fraudkeras.data.batches`, and :class:`EpochEnd` (after every other
callback's ``on_epoch_end``) checkpoints and stops early.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fraudkeras._core import interrupts
from fraudkeras._core.errors import TrainingError
from fraudkeras.backends import current
from fraudkeras.backends.base import Placement
from fraudkeras.data.batches import EpochBatches, SeededBatches
from fraudkeras.data.splits import Part, Split
from fraudkeras.data.stream_batches import StreamBatches
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.modeling.features import PREPARED
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs import checkpoint
from fraudkeras.runs.config import TrainConfig
from fraudkeras.training.callbacks import AveragedWeights, EpochTimer, InterruptCheck
from fraudkeras.training.shards import Shard
from fraudkeras.training.validation import Validation

log = logging.getLogger("fraudkeras")


class EpochEnd(keras.callbacks.Callback):
    """Calls ``handle(epoch, logs)`` at the end of every epoch; stops ``fit`` when
    it returns True (early stopping)."""

    def __init__(self, handle: Callable[[int, dict[str, Any]], bool]) -> None:
        super().__init__()
        self.handle = handle

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.handle(epoch, dict(logs or {})):
            self.model.stop_training = True


def training_batches(
    model: FraudMLP,
    parts: Split,
    config: TrainConfig,
    placement: Placement | None = None,
    streamed: StreamSplit | None = None,
    shard: Shard | None = None,
) -> SeededBatches:
    """The run's training batches, transformed and scaled once
    (``FraudMLP.prepare``), not at every step: rows in memory; streamed from the
    table (each chunk prepared in NumPy as it is read); or, in a group whose
    processes read their own files, this process's local batches of
    ``batch_size / processes`` of its own rows. ``placement``: padded to a
    multiple of the devices, and this process's part of each global batch."""
    size = config.batch_size
    if shard is not None:
        x = model.prepare(shard.x)
        local = size // shard.processes
        return EpochBatches(x, shard.y, local, config.seed, PREPARED, own=shard.process,
                            steps=shard.steps)  # fmt: skip
    place = placement or Placement()
    where = {"pad_to": place.pad_to, "process": place.process, "processes": place.processes}
    if streamed is not None:
        return StreamBatches(streamed, size, config.seed, model.numpy_preparer(), PREPARED,
                             **where)  # fmt: skip
    return EpochBatches(model.prepare(parts.train.x), parts.train.y, size, config.seed,
                        PREPARED, **where)  # fmt: skip


def fit_epochs(
    model: FraudMLP,
    batches: SeededBatches,
    config: TrainConfig,
    first_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int | str,
    validation: Part | None = None,
) -> None:
    """Train epochs ``first_epoch .. config.epochs - 1`` in one ``fit``; epoch ``e``
    sees ``batches`` in their order of epoch ``e``, as a resumed run does. With
    ``validation`` (skipped by benchmarks), :class:`Validation` adds ``val_loss``,
    ``val_pr_auc`` and ``val_roc_auc`` to each epoch's logs."""
    own: list[keras.callbacks.Callback] = [batches.callback()]
    if validation is not None:
        own.insert(0, Validation(model, validation.x, validation.y))
    if getattr(model.optimizer, "use_ema", False):
        own.insert(0, AveragedWeights(resumed=first_epoch > 0))  # first: the others see it
    model.fit(
        current().feed(batches),
        shuffle=False,  # the order is the dataset's; Keras would shuffle whole batches
        initial_epoch=first_epoch,
        epochs=config.epochs,
        callbacks=[*own, *callbacks],
        verbose=verbose,
    )


def fit_with_checkpoints(
    model: FraudMLP,
    batches: SeededBatches,
    validation: Part,
    config: TrainConfig,
    out: Path | None,
    record: dict[str, Any],
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
    resume_from: checkpoint.TrainingState | None = None,
    writes: bool = True,
) -> checkpoint.TrainingState:
    """Fit all epochs, checkpointing each to ``OUT.partial/`` (``writes``: this
    process writes files) and stopping early on validation PR-AUC or a NaN loss;
    leaves the model with the best epoch's weights."""
    partial = checkpoint.checkpoint_dir(out) if out is not None else None
    target = partial if writes else None
    state = resume_from or checkpoint.TrainingState()
    best = [model.get_weights()]
    if resume_from is not None and partial is not None:
        best[0] = checkpoint.restore(partial, model)
        log.info("resuming %s after epoch %d of %d", out, state.epochs_done, config.epochs)
    timer = EpochTimer()

    def end_of_epoch(epoch: int, logs: dict[str, Any]) -> bool:
        """Checkpoint and early stopping after each epoch; True stops ``fit``."""
        if not math.isfinite(logs.get("loss", math.nan)) or "val_pr_auc" not in logs:
            if target is not None:
                shutil.rmtree(target, ignore_errors=True)
            raise TrainingError(
                f"training diverged: loss became NaN/inf in epoch {epoch + 1} "
                f"(try a lower learning_rate than {config.learning_rate:g})"
            )
        logs["epoch_seconds"] = timer.seconds[-1]
        if state.record(logs, monitor="val_pr_auc", patience=config.patience):
            best[0] = model.get_weights()
        if target is not None:
            checkpoint.save(target, model, state, record, best[0])
        return state.stopped

    if state.epochs_done < config.epochs and not state.stopped:
        own = [keras.callbacks.TerminateOnNaN(), timer, InterruptCheck()]
        every = [*own, *current().epoch_callbacks(), *callbacks, EpochEnd(end_of_epoch)]
        fit_epochs(model, batches, config, state.epochs_done, every, verbose, validation)
        interrupts.check()
    model.set_weights(best[0])
    return state


def train_labels(loaded_streamed: StreamSplit | None, parts: Split) -> np.ndarray:
    """The training rows' labels (of a streamed table: counted in its scan)."""
    if loaded_streamed is None:
        return parts.train.y
    n_train, frauds = loaded_streamed.n_train, loaded_streamed.train_frauds
    return np.repeat(np.array([0, 1], np.int8), [n_train - frauds, frauds])
