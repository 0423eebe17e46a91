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


def test_a_run_keeps_feature_samples_but_scores_every_holdout_row(
    shards: Path, small_frame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Features are kept only for bounded samples (here ~60 validation and test
    rows); the metrics cover every validation and test row, as scikit-learn
    computes them on Keras's own predictions of the rows NumPy selects."""
    from functools import partial

    from sklearn.metrics import average_precision_score

    from fraudkeras.data.schema import FEATURES, LABEL
    from fraudkeras.data.streaming import split_stream, uniform_hash
    from fraudkeras.training import sources

    monkeypatch.setattr(
        sources, "split_stream", partial(split_stream, sample_rows=200, holdout_rows=60)
    )
    run = train(shards, out=tmp_path / "run", **{**OPTIONS, "report": True}, plots=False)
    u = uniform_hash(np.arange(small_frame.height), 42)  # the default split_seed
    test = u >= 0.85
    assert len(run.split.test.y) < 100 < int(test.sum()) == run.metrics["test"]["rows"]
    x = small_frame.select(FEATURES).to_numpy().astype(np.float32)[test]
    expected = average_precision_score(
        small_frame[LABEL].to_numpy()[test], run.model.predict(x, verbose=0).reshape(-1)
    )
    assert run.metrics["test"]["pr_auc"] == pytest.approx(expected, abs=1e-4)
    analysis = json.loads((tmp_path / "run" / "report" / "analysis.json").read_text())
    assert analysis["importance"]["rows"] == len(run.split.validation.y)
    listed = analysis["errors"]["false_positives"] + analysis["errors"]["false_negatives"]
    assert listed and all(int(item["row"]) in set(np.flatnonzero(test)) for item in listed)
    assert all(len(item["pushed_by"]) == 2 for item in listed)


def test_a_stream_cache_serves_later_epochs_without_the_files(shards: Path, tmp_path: Path) -> None:
    """With ``stream_cache``, the second and third epochs read the training rows
    from the cache: they run (and equal an uncached run) while the Parquet files
    are gone, from the first epoch's end to training's end (scoring validation
    and test reads them again); the cache is removed afterwards."""
    import shutil

    table, away = tmp_path / "table", tmp_path / "away"
    shutil.copytree(shards, table)

    class FilesGoneAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch == 0:
                table.rename(away)

        def on_train_end(self, logs=None) -> None:
            away.rename(table)

    options = {**OPTIONS, "epochs": 3}
    cached = train(table, out=tmp_path / "cached", stream_cache=True,
                   callbacks=[FilesGoneAfterFirstEpoch()], **options)  # fmt: skip
    assert cached.metrics["epochs_run"] == 3
    assert not (tmp_path / "cached.stream-cache").exists()
    plain = train(shards, out=tmp_path / "plain", **options)
    assert cached.history["loss"] == plain.history["loss"]
    for a, b in zip(cached.model.get_weights(), plain.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_resume_reuses_only_its_own_stream_cache(shards: Path, tmp_path: Path) -> None:
    """An interrupted cached run keeps its cache for ``resume``; a cache whose
    manifest names another table is discarded (its rows are zeroed here, so
    reusing it would change the result), and the resumed run ends like an
    uninterrupted one."""
    options = {**OPTIONS, "epochs": 3}
    whole = train(shards, out=tmp_path / "whole", **options)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(shards, out=out, stream_cache=True, callbacks=[StopAfter()], **options)
    cache = tmp_path / "cut.stream-cache"
    kept = sorted(cache.glob("rows-*.npy"))
    assert kept and (cache / "manifest.json").is_file()
    for path in kept:
        np.save(path, np.zeros_like(np.load(path)))
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["fingerprint"]["sha256"] = "another table"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    resumed = resume(out, report=False, stream_cache=True)
    assert not cache.exists()
    assert resumed.history["loss"] == whole.history["loss"]
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
