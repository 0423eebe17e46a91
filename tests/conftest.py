"""Shared fixtures. The suite runs once per Keras backend (tox sets KERAS_BACKEND);
tests that concern one backend only are skipped under the others."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "jax")
if os.environ["KERAS_BACKEND"] == "torch":
    import torch  # noqa: F401  (torch before tensorflow, always)

from fraudkeras.data.schema import LABEL
from fraudkeras.data.tables import Transactions, load_transactions


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the user's cache or touches the network."""
    monkeypatch.setenv("FRAUDKERAS_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("FRAUDKERAS_OFFLINE", "1")
    monkeypatch.delenv("FRAUDKERAS_DATA", raising=False)


@pytest.fixture(scope="session")
def sample() -> Transactions:
    return load_transactions("sample")


@pytest.fixture(scope="session")
def small_frame(sample: Transactions) -> pl.DataFrame:
    """All 492 frauds and 2,508 normal rows of the sample, in time order: 3,000 rows."""
    frame = sample.frame
    normal = frame.filter(pl.col(LABEL) == 0).sample(n=2508, seed=0)
    return pl.concat([frame.filter(pl.col(LABEL) == 1), normal]).sort("Time")


@pytest.fixture(scope="session")
def small_parquet(small_frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.parquet"
    small_frame.write_parquet(path)
    return path


@pytest.fixture(scope="session")
def small(small_parquet: Path) -> Transactions:
    return load_transactions(small_parquet)


@pytest.fixture(scope="session")
def trained_run(small: Transactions, tmp_path_factory: pytest.TempPathFactory):
    """One short training run under the active backend, saved as a run folder."""
    from fraudkeras.training.train import train

    out = tmp_path_factory.mktemp("runs") / "run"
    return train(small, out=out, epochs=2, batch_size=128, seed=7, report=False)


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory: pytest.TempPathFactory):
    """A copy of ``trained_run`` with every export format, and its manifest."""
    from fraudkeras.deploy.export import export

    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(trained_run.run_dir, run)
    return run, export(run)


@pytest.fixture(scope="session")
def shards(small_frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 3,000-row table as three Parquet files of 1,000 rows (streaming input)."""
    folder = tmp_path_factory.mktemp("shards")
    for i in range(3):
        small_frame[i * 1000 : (i + 1) * 1000].write_parquet(folder / f"part-{i}.parquet")
    return folder
