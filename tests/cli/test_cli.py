"""The command line: a successful run, and one clear line per kind of failure."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from fraudkeras.cli import main
from helpers import BACKEND, run_cli


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("fraudkeras: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_train_then_evaluate(capsys, small_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_main(
        capsys,
        "train",
        "--backend",
        BACKEND,
        "--data",
        str(small_parquet),
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"PR-AUC {metrics['test']['pr_auc']:.4f}" in stdout
    assert f"run saved to {out}" in stdout
    assert f"report written to {out / 'report'}" in stdout
    assert (out / "report" / "report.html").is_file() and (out / "report" / "history.png").is_file()
    assert "data: " in err and "3000 rows, 492 frauds" in err

    code, stdout, err = run_main(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["test"]["pr_auc"] == pytest.approx(
        metrics["test"]["pr_auc"], abs=1e-6
    )


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["train", "--epochs", "-1"], 2, ["epochs must be >= 1, got -1"]),
        (["train", "--epochs", "ten"], 2, ["argument --epochs: invalid int value: 'ten'"]),
        (["train", "--learning-rate", "0"], 2, ["--learning-rate must be in (0, inf]"]),
        (["train", "--batch-size", "0"], 2, ["--batch-size must be >= 1, got 0"]),
        (["train", "--backend", "mxnet"], 2, ["argument --backend: invalid choice: 'mxnet'"]),
        (["train", "--class-weight", "heavy"], 2, ["--class-weight must be one of"]),
        (["train", "--hidden-units", "64,x"], 2, ["expected sizes like 64,32,16"]),
        (["train", "--ensemble", "0"], 2, ["--ensemble must be >= 1, got 0"]),
        (["train", "--embeddings", "fourier"], 2, ["invalid choice: 'fourier'"]),
        (["train", "--threshold-strategy", "profit"], 2, ["invalid choice: 'profit'"]),
        (["train", "--target-recall", "1.5"], 2, ["--target-recall must be in (0, 1]"]),
        (["train", "--review-cost", "-5"], 2, ["--review-cost must be in [0, inf]"]),
        (["fly"], 2, ["invalid choice: 'fly'"]),
        (["threshold", "no/such/run"], 5, ["no/such/run: no such run folder"]),
        (["explain", "no/such/run", "--row", "1"], 5, ["no/such/run: no such run folder"]),
        (["explain", "no/such/run"], 2, ["one of the arguments --row --transaction-json"]),
        (["report", "no/such/run"], 5, ["no/such/run: no such run folder"]),
        (["evaluate", "no/such/run"], 5, ["no/such/run: no such run folder"]),
    ],
)
def test_bad_arguments(
    capsys, tmp_path: Path, args: list[str], code: int, fragments: list[str]
) -> None:
    if args[0] == "train":
        args = [*args, "--backend", BACKEND] if "--backend" not in args else args
        args += ["--data", "sample", "--out", str(tmp_path / "run")]
    got, _, err = run_main(capsys, *args)
    assert got == code
    assert_one_error_line(err, *fragments)
    assert not (tmp_path / "run").exists()


def test_bad_data_leaves_no_run_folder(capsys, small_frame: pl.DataFrame, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    small_frame.drop("V4").write_csv(bad)
    code, _, err = run_main(
        capsys, "train", "--backend", BACKEND, "--data", str(bad), "--out", str(tmp_path / "run")
    )
    assert code == 3
    assert_one_error_line(err, str(bad), "missing column(s) V4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_existing_run_folder_needs_force(capsys, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    code, _, err = run_main(
        capsys, "train", "--backend", BACKEND, "--data", "sample", "--out", str(tmp_path / "run")
    )
    assert code == 6
    assert_one_error_line(err, "exists already (--force replaces it)")


def test_corrupt_model_in_run_folder(capsys, trained_run, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run.run_dir, broken)
    data = (broken / "model.keras").read_bytes()
    (broken / "model.keras").write_bytes(data[: len(data) // 3])
    assert not zipfile.is_zipfile(broken / "model.keras")
    code, _, err = run_main(capsys, "evaluate", str(broken))
    assert code == 5
    assert_one_error_line(err, "model.keras: checksum mismatch")  # not what the run wrote


def test_subprocess_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    plain = run_cli(
        "train", "--backend", BACKEND, "--data", str(missing), "--out", str(tmp_path / "r")
    )
    assert plain.returncode == 3
    assert plain.stderr.strip().splitlines()[-1] == f"fraudkeras: error: {missing}: no such file"
    assert "Traceback" not in plain.stderr
    debug = run_cli(
        "train",
        "--debug",
        "--backend",
        BACKEND,
        "--data",
        str(missing),
        "--out",
        str(tmp_path / "r"),
    )
    assert debug.returncode == 3 and "Traceback" in debug.stderr
    assert not (tmp_path / "r").exists()


def _copy_run(trained_run, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    return run


def test_threshold_command_rechooses_and_records(capsys, trained_run, tmp_path: Path) -> None:
    run = _copy_run(trained_run, tmp_path)
    code, stdout, err = run_main(capsys, "threshold", str(run), "--strategy", "cost",
                                 "--review-cost", "2.5")  # fmt: skip
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["threshold_policy"] == {"strategy": "cost", "target_recall": 0.9,
                                           "review_cost": 2.5, "chargeback_fee": 0.0}  # fmt: skip
    assert f"threshold {metrics['tuned_threshold']:.6f} (cost, chosen on validation)" in stdout
    assert f"{metrics['test']['at_tuned']['cost']:,.2f}" in stdout
    assert "flag nothing" in stdout and "flag everything" in stdout
    code, _, err = run_main(capsys, "threshold", str(run), "--strategy", "recall",
                            "--target-recall", "0")  # fmt: skip
    assert code == 2
    assert_one_error_line(err, "--target-recall must be in (0, 1], got 0.0")


def test_explain_command(capsys, trained_run) -> None:
    code, stdout, err = run_main(capsys, "explain", str(trained_run.run_dir), "--row", "0",
                                 "--top", "2", "--json")  # fmt: skip
    assert code == 0, err
    explained = json.loads(stdout)
    assert 0 <= explained["probability"] <= 1 and len(explained["contributions"]) == 30
    assert explained["top"] == 2  # --top holds for --json too, as in the text
    assert 0 < len(explained["towards_fraud"]) + len(explained["towards_normal"]) <= 4
    contributions = explained["contributions"]
    strongest = max((c for c in contributions.values() if c > 0), default=None)
    if explained["towards_fraud"]:
        assert explained["towards_fraud"][0]["contribution"] == strongest
    code, _, err = run_main(capsys, "explain", str(trained_run.run_dir), "--row", "-1")
    assert code == 2
    assert_one_error_line(err, "--row -1:", "has 3,000 rows")
    code, _, err = run_main(capsys, "explain", str(trained_run.run_dir),
                            "--transaction-json", '{"Time": "x"}')  # fmt: skip
    assert code == 3
    assert_one_error_line(err, "--transaction-json:")


def test_report_command_rewrites_the_report(capsys, trained_run, tmp_path: Path) -> None:
    """Training writes the report, so ``report RUN_DIR`` replaces it (no --force)."""
    run = _copy_run(trained_run, tmp_path)
    code, stdout, err = run_main(capsys, "report", str(run), "--no-plots")
    assert code == 0, err
    assert f"report written to {run / 'report'}" in stdout
    assert not list((run / "report").glob("*.png"))
    code, stdout, err = run_main(capsys, "report", str(run))
    assert code == 0, err
    assert list((run / "report").glob("*.png"))  # the second report replaced the first
    code, _, err = run_main(capsys, "report", str(run), "--no-plots", "--force")
    assert code == 0, err  # --force is still accepted


def test_train_without_report(capsys, small_parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_main(
        capsys, "train", "--backend", BACKEND, "--data", str(small_parquet), "--epochs", "1",
        "--out", str(out), "--quiet", "--no-report", "--threshold-strategy", "recall",
    )  # fmt: skip
    assert code == 0, err
    assert not (out / "report").exists() and "report written" not in stdout
    assert "| 1 epoch (best 1)" in stdout and "epochs" not in stdout.splitlines()[0]
    assert json.loads((out / "config.json").read_text())["threshold_strategy"] == "recall"
