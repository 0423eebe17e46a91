"""``compare`` trains under every backend in subprocesses; run once (jax env)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudkeras import comparison as compare_module
from fraudkeras._core.backend import BACKENDS
from fraudkeras._core.errors import BackendError
from fraudkeras.cli import main
from fraudkeras.comparison import compare
from helpers import assert_real_png, only_backend, run_cli

pytestmark = only_backend("jax")
FAST = ("--epochs", "1", "--batch-size", "256")


def test_compare_trains_everywhere_and_cross_loads(small_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    done = run_cli("compare", "--data", str(small_parquet), "--out", str(out), *FAST)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "compare.json").read_text())
    assert result["status"] == {b: "ok" for b in BACKENDS}
    for number, backend in enumerate(BACKENDS, 1):  # progress while it trains
        assert f"training under {backend} ({number} of 3), an independent run" in done.stderr
    assert done.stdout.rstrip().endswith(f"written to {out} (compare.json, compare.md)")
    table = (out / "compare.md").read_text()
    assert "Each backend trained independently" in table and "fraudkeras parity" in table
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
    assert_real_png(out / "compare.png")
    assert not (out / "runs" / "jax" / "report").exists()  # compare's runs skip reports


def test_uninstalled_and_failed_backends_are_reported_not_raised(
    small_parquet: Path, tmp_path: Path, monkeypatch
) -> None:
    """One real training (jax); torch fails inside its run, TensorFlow is not installed."""
    real = compare_module._train_under

    def torch_fails(backend, *args):
        if backend == "torch":
            raise BackendError("out of memory")
        return real(backend, *args)

    monkeypatch.setattr(compare_module, "is_installed", lambda name: name != "tensorflow")
    monkeypatch.setattr(compare_module, "_train_under", torch_fails)
    result = compare(small_parquet, out=tmp_path / "cmp", train_args=FAST)
    assert result["status"] == {
        "jax": "ok",
        "torch": "failed: out of memory",
        "tensorflow": "skipped: not installed",
    }
    assert list(result["metrics"]) == ["jax"]
    assert list(result["max_abs_diff"]) == ["jax"]
    assert (tmp_path / "cmp" / "compare.png").is_file()
    assert "| status | ok | failed: out of memory | skipped: not installed |" in (
        (tmp_path / "cmp" / "compare.md").read_text()
    )


def test_no_backend_trained_is_an_error(small_parquet: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"no backend trained \(jax: failed: --epochs must be"):
        compare(small_parquet, out=tmp_path / "cmp", backends=("jax",),
                train_args=("--epochs", "0"))  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_bad_backend_list(capsys, tmp_path: Path) -> None:
    assert main(["compare", "--backends", "jax,mxnet", "--out", str(tmp_path / "c")]) == 2
    assert "unknown backend(s) mxnet" in capsys.readouterr().err
    assert main(["compare", "--epochs", "0", "--data", "sample", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()
