"""Checkpoints and resume: the early-stopping bookkeeping matches Keras', and a
run interrupted after any epoch finishes with the uninterrupted run's metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from fraudkeras._core.errors import ModelFileError, OutputError
from fraudkeras.runs.checkpoint import STATE_FILE, TrainingState, checkpoint_dir
from fraudkeras.training.train import resume, train
from helpers import MEASUREMENTS, only_backend


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_stopping_matches_keras_early_stopping(patience: int) -> None:
    values = [0.50, 0.60, 0.55, 0.60, 0.58, 0.70, 0.69, 0.68, 0.67, 0.66, 0.65]
    stopper = keras.callbacks.EarlyStopping(monitor="val_pr_auc", mode="max", patience=patience)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what fit() sets before the callbacks run
    stopper.set_model(model)
    stopper.on_train_begin()
    state = TrainingState()
    for epoch, value in enumerate(values):
        stopper.on_epoch_end(epoch, {"val_pr_auc": value})
        state.record({"val_pr_auc": value}, monitor="val_pr_auc", patience=patience)
        assert state.stopped == stopper.model.stop_training, (epoch, value)
        if state.stopped:
            break
    assert state.best_epoch == stopper.best_epoch
    assert state.best == stopper.best


class StopAfter(keras.callbacks.Callback):
    """Simulates Ctrl-C at the end of a given epoch's training."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def without_measurements(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in MEASUREMENTS}


@pytest.mark.parametrize(
    "levers",
    [{}, pytest.param({"ema": 0.0, "schedule": "cosine"}, marks=only_backend("jax"))],
    ids=["default", "no-ema-cosine"],  # the step count restored: once is enough
)
def test_resumed_run_ends_like_an_uninterrupted_one(small, tmp_path: Path, levers) -> None:
    """With the default averaged weights (the checkpoint holds the averages in the
    model), and without them but with a schedule (the step count is restored)."""
    options = {"epochs": 4, "batch_size": 256, "seed": 3, "patience": 4, **levers}
    whole = train(small, out=tmp_path / "whole", **options)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(small, out=out, callbacks=[StopAfter(2)], **options)
    assert not out.exists()  # nothing that looks like a finished run
    state = json.loads((checkpoint_dir(out) / STATE_FILE).read_text())["state"]
    assert state["epochs_done"] == 2  # epoch 3 was cut before its checkpoint
    resumed = resume(out)
    assert without_measurements(resumed.metrics) == without_measurements(whole.metrics)
    for key in ("loss", "val_loss", "val_pr_auc"):
        assert resumed.history[key] == whole.history[key]
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not checkpoint_dir(out).exists() and (out / "model.keras").is_file()


def test_resume_refuses_what_it_cannot_continue(small, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no resumable checkpoint"):
        resume(tmp_path / "never")
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(small, out=out, epochs=3, batch_size=512, callbacks=[StopAfter(1)])
    (out).mkdir()
    with pytest.raises(OutputError, match="nothing to resume"):
        resume(out)
    out.rmdir()
    shutil.copy(checkpoint_dir(out) / STATE_FILE, tmp_path / "state.json")
    (checkpoint_dir(out) / STATE_FILE).write_text("{}")
    with pytest.raises(ModelFileError, match="damaged checkpoint state"):
        resume(out)
