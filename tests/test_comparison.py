"""``compare`` trains under every backend in subprocesses; run once (jax env)."""

from __future__ import annotations

import json
from pathlib import Path

from fraudkeras import comparison as compare_module
from fraudkeras.backend import BACKENDS
from fraudkeras.cli import main
from fraudkeras.comparison import compare
from helpers import only_backend

pytestmark = only_backend("jax")
FAST = ("--epochs", "1", "--batch-size", "256")


def test_compare_trains_everywhere_and_cross_loads(small_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = compare(small_parquet, out=out, train_args=FAST)
    assert result["status"] == {b: "ok" for b in BACKENDS}
    saved = json.loads((out / "compare.json").read_text())
    assert saved == json.loads(json.dumps(result))
    table = (out / "compare.md").read_text()
    for backend in BACKENDS:
        run_metrics = json.loads((out / "runs" / backend / "metrics.json").read_text())
        assert run_metrics["backend"] == backend
        assert result["metrics"][backend] == run_metrics
        assert f"{run_metrics['test']['pr_auc']:.4f}" in table
        for loader in BACKENDS:
            gap = result["max_abs_diff"][backend][loader]
            assert gap <= 1e-5 and (gap == 0.0 if loader == backend else True)
    assert "| metric | jax | torch | tensorflow |" in table
    assert "median epoch seconds" in table and "peak RSS MiB" in table


def test_uninstalled_backend_is_skipped(small_parquet: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compare_module, "is_installed", lambda name: name == "jax")
    result = compare(small_parquet, out=tmp_path / "cmp", train_args=FAST)
    assert result["status"] == {
        "jax": "ok",
        "torch": "skipped: not installed",
        "tensorflow": "skipped: not installed",
    }
    assert list(result["max_abs_diff"]) == ["jax"]
    assert "| status | ok | skipped: not installed | skipped: not installed |" in (
        (tmp_path / "cmp" / "compare.md").read_text()
    )


def test_failed_training_is_reported_not_raised(small_parquet: Path, tmp_path: Path) -> None:
    result = compare(
        small_parquet, out=tmp_path / "cmp", backends=("jax",), train_args=("--epochs", "0")
    )
    assert result["status"] == {"jax": "failed: epochs must be >= 1, got 0"}
    assert result["metrics"] == {} and result["max_abs_diff"] == {}


def test_cli_rejects_bad_backend_list(capsys, tmp_path: Path) -> None:
    assert main(["compare", "--backends", "jax,mxnet", "--out", str(tmp_path / "c")]) == 2
    assert "unknown backend(s) mxnet" in capsys.readouterr().err
    assert main(["compare", "--epochs", "0", "--data", "sample", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()
