"""Drift: PSI against an independent NumPy computation, the verdicts on shifted
and unshifted data, the ``fraudkeras drift`` command and ``score``'s warning."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudkeras._core.errors import DataError, ModelFileError
from fraudkeras.analysis import drift
from fraudkeras.cli.drift import EXIT_DRIFT
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.deploy.scoring import score
from helpers import only_backend, run_cli


def numpy_psi(train: np.ndarray, new: np.ndarray, bins: int = 10) -> float:
    """PSI written out: decile edges of ``train`` (ties merged), shares of each bin
    ``(lo, hi]`` counted with explicit comparisons, shares floored at 1e-4."""
    edges = sorted(set(np.quantile(train, [i / bins for i in range(1, bins)]).tolist()))
    bounds = [-np.inf, *edges, np.inf]
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        e = max(np.count_nonzero((train > lo) & (train <= hi)) / len(train), 1e-4)
        a = max(np.count_nonzero((new > lo) & (new <= hi)) / len(new), 1e-4)
        total += (a - e) * np.log(a / e)
    return total


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0, 5.0])
def test_psi_equals_numpy(shift: float) -> None:
    rng = np.random.default_rng(0)
    train, new = rng.normal(size=5000), rng.normal(loc=shift, size=3000)
    reference = drift.describe(train)
    got = drift.compare_one(reference, new)["psi"]
    assert got == pytest.approx(numpy_psi(train, new), rel=1e-12, abs=1e-12)


def test_psi_with_ties_equals_numpy() -> None:
    rng = np.random.default_rng(1)
    train = np.round(rng.exponential(20, 4000))  # many ties, as Amount has
    new = np.round(rng.exponential(30, 2000))
    got = drift.compare_one(drift.describe(train), new)["psi"]
    assert got == pytest.approx(numpy_psi(train, new), rel=1e-12)


def test_verdicts() -> None:
    assert [drift.verdict(v) for v in (0.0, 0.099, 0.1, 0.25, 0.26)] == [
        "stable", "stable", "watch", "watch", "shifted",
    ]  # fmt: skip


def test_train_stores_the_reference(trained_run) -> None:
    reference = drift.read_reference(trained_run.run_dir)
    assert reference["transform"] == "time_of_day_log_amount"
    assert list(reference["features"])[:2] == ["time_sin", "time_cos"]
    assert reference["rows"] == len(trained_run.split.train.y)
    amount = trained_run.split.train.x[:, -1].astype(np.float32).astype(float)
    assert reference["features"]["log1p_Amount"]["max"] == pytest.approx(np.log1p(amount.max()))


def write(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_parquet(path)
    return path


def report_for(trained_run, frame: pl.DataFrame, tmp_path: Path) -> dict:
    return drift.drift(trained_run.run_dir, write(frame, tmp_path / "new.parquet"))


def test_whole_day_shift_is_not_drift(trained_run, small_frame, tmp_path: Path) -> None:
    frame = small_frame.with_columns(pl.col("Time") + 400 * 86400)
    report = report_for(trained_run, frame, tmp_path)
    unshifted = report_for(trained_run, small_frame, tmp_path)
    assert report["shifted"] == []
    for name in ("time_sin", "time_cos", "score"):
        now = report[name] if name == "score" else report["features"][name]
        before = unshifted[name] if name == "score" else unshifted["features"][name]
        assert now["verdict"] == "stable"
        # float32 keeps Time + 400 days to 4 s: a row may cross a bin edge, not more
        assert now["psi"] == pytest.approx(before["psi"], abs=1e-3)
        assert now["outside_share"] == pytest.approx(before["outside_share"], abs=1 / 3000)


@pytest.mark.parametrize(
    ("column", "change"), [("log1p_Amount", pl.col("Amount") * 5 + 100), ("V14", pl.col("V14") + 3)]
)
def test_shifted_feature_is_found(trained_run, small_frame, tmp_path, column, change) -> None:
    frame = small_frame.with_columns(change.alias(column.removeprefix("log1p_")))
    report = report_for(trained_run, frame, tmp_path)
    assert report["features"][column]["verdict"] == "shifted"
    assert column in report["shifted"]
    assert report["verdict"] == "shifted"
    untouched = report["features"]["V1"]
    assert untouched["psi"] < drift.WATCH


def test_features_are_read_by_name(trained_run, small_frame, tmp_path: Path) -> None:
    columns = ["note", *reversed(small_frame.columns)]
    frame = small_frame.with_columns(pl.lit("x").alias("note")).select(columns)
    report = report_for(trained_run, frame, tmp_path)
    reordered = report_for(trained_run, small_frame, tmp_path)
    assert report["features"]["V14"]["psi"] == pytest.approx(reordered["features"]["V14"]["psi"])


def test_bad_input(trained_run, small_frame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing column"):
        report_for(trained_run, small_frame.drop("V3"), tmp_path)
    with pytest.raises(DataError, match="no such file"):
        drift.drift(trained_run.run_dir, tmp_path / "absent.csv")
    with pytest.raises(ModelFileError):
        drift.drift(tmp_path, write(small_frame, tmp_path / "a.parquet"))


@only_backend("torch")  # drift compares tables; the CLI is the same under every backend
def test_cli(trained_run, small_frame, tmp_path: Path) -> None:
    run = str(trained_run.run_dir)
    same = write(small_frame, tmp_path / "same.parquet")
    moved = write(small_frame.with_columns(pl.col("V14") + 3), tmp_path / "moved.parquet")
    out = tmp_path / "out"
    done = run_cli("drift", "--model", run, "--data", str(same), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "score" in done.stdout and "verdict" in done.stdout
    written = json.loads((out / drift.DRIFT_FILE).read_text())
    assert set(written) >= {"verdict", "features", "score", "shifted"}
    assert (out / drift.PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    kept = run_cli("drift", "--model", run, "--data", str(moved), "--out", str(out))
    assert kept.returncode == 6, kept.stderr  # as every command: no silent overwrite
    assert f"{out / drift.DRIFT_FILE}: exists already (--force replaces it)" in kept.stderr
    assert json.loads((out / drift.DRIFT_FILE).read_text()) == written
    found = run_cli("drift", "--model", run, "--data", str(moved), "--out", str(out), "--force")
    assert found.returncode == 0  # a finding, not an error
    failing = ("drift", "--model", run, "--data", str(moved), "--out", str(out), "--no-plots",
               "--force")  # fmt: skip
    done = run_cli(*failing, "--fail-on-drift")
    assert done.returncode == EXIT_DRIFT, done.stderr
    assert "V14" in done.stdout
    bad = run_cli("drift", "--model", run, "--data", str(tmp_path / "absent.parquet"))
    assert bad.returncode == DataError.exit_code
    assert bad.stderr.strip().count("\n") == 0 and "no such file" in bad.stderr


def test_score_warns_outside_the_training_range(
    trained_run, small_frame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = trained_run.run_dir / "model.keras"
    training = pl.DataFrame(trained_run.split.train.x, schema=list(FEATURES), orient="row")
    inside = write(training, tmp_path / "inside.parquet")
    outside = write(
        small_frame.with_columns(pl.col("Amount") + 1e6).drop(LABEL), tmp_path / "out.parquet"
    )
    with caplog.at_level(logging.WARNING, logger="fraudkeras"):
        score(model, inside, tmp_path / "a.csv")
    assert "training range" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="fraudkeras"):
        score(model, outside, tmp_path / "b.csv")
    assert "100.0% of the rows" in caplog.text and "fraudkeras drift" in caplog.text
