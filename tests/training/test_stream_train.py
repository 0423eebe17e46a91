"""Training on a streamed table: a run folder that evaluate and export accept,
and a resumed run that ends like an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from fraudkeras.analysis.evaluation import evaluate
from fraudkeras.runs.checkpoint import checkpoint_dir
from fraudkeras.training.train import resume, train
from helpers import MEASUREMENTS

OPTIONS = {"epochs": 2, "batch_size": 128, "seed": 7, "patience": 4, "report": False}


class StopAfter(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch == 1:  # after epoch 0's checkpoint, before epoch 1's
            raise KeyboardInterrupt


def _same(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in MEASUREMENTS}


def test_streamed_run_is_evaluated_and_exported(shards: Path, tmp_path: Path) -> None:
    run = train(shards, out=tmp_path / "run", **OPTIONS)
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["stream"] and data["split"]["train"]["rows"] == run.streamed.n_train
    assert (tmp_path / "run" / "drift_reference.json").is_file()
    again = evaluate(tmp_path / "run")
    assert again["data_matches"] and again["test"]["pr_auc"] == pytest.approx(
        run.metrics["test"]["pr_auc"], abs=1e-6
    )
    from fraudkeras.deploy.export import export

    manifest = export(tmp_path / "run", ("onnx",))
    assert (tmp_path / "run" / "export").is_dir() and manifest


def test_resumed_stream_run_ends_like_an_uninterrupted_one(shards: Path, tmp_path: Path) -> None:
    options = {**OPTIONS, "epochs": 3}
    whole = train(str(shards / "*.parquet"), out=tmp_path / "whole", **options)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(str(shards / "*.parquet"), out=out, callbacks=[StopAfter()], **options)
    assert checkpoint_dir(out).is_dir() and not out.exists()
    resumed = resume(out, report=False)
    assert _same(resumed.metrics) == _same(whole.metrics)
    assert resumed.history["loss"] == whole.history["loss"]
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
