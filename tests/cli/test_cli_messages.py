"""What the command line says, run as typed: version, help, error lines, missing
extras, the model a score used, refused mixed folders, abandoned scratch folders."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

import fraudkeras
from fraudkeras._core.extras import missing_extra
from helpers import BACKEND, only_backend, run_cli


@only_backend("jax")
def test_version_and_a_help_that_ends_in_a_sentence() -> None:
    version = run_cli("--version")
    assert (
        version.returncode == 0 and version.stdout.strip() == f"fraudkeras {fraudkeras.__version__}"
    )
    shown = run_cli("--help")
    assert shown.returncode == 0
    lines = [line for line in shown.stdout.splitlines() if line.strip()]
    assert lines[-1].rstrip().endswith(".") and "parity" in shown.stdout
    assert "each with" not in shown.stdout  # the module docstring's fragment is gone


@only_backend("jax")
def test_argument_errors_name_the_program_once() -> None:
    bare = run_cli()
    assert bare.returncode == 2
    assert bare.stderr.strip() == (
        "fraudkeras: error: the following arguments are required: command"
    )
    score = run_cli("score")
    assert score.returncode == 2
    assert score.stderr.strip() == (
        "fraudkeras: error: score: the following arguments are required: --model, --data, --out"
    )


@only_backend("jax")
def test_help_texts_show_defaults() -> None:
    serve = " ".join(run_cli("serve", "--help").stdout.split())
    for shown in ("(default: 127.0.0.1)", "(default: 8080)", "(default: 8081)",
                  "server processes (default: 1; 1 to 256)"):  # fmt: skip
        assert shown in serve
    compare = " ".join(run_cli("compare", "--help").stdout.split())
    assert "--data DATA auto (default), sample, openml, or a .csv/.parquet path" in compare
    assert "independent run" in compare


@only_backend("jax")
def test_a_missing_extra_is_one_line_with_the_pip_command(trained_run) -> None:
    """``serve`` without the serve extra: starlette made unimportable in the process."""
    script = (
        "import sys; sys.modules['starlette'] = None; from fraudkeras.cli import main; "
        "raise SystemExit(main(['serve', sys.argv[1]]))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(trained_run.run_dir)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stderr.strip() == (
        "fraudkeras: error: serve needs the 'serve' extra (starlette, which is not installed): "
        "pip install 'fraudkeras[serve]'"
    )


def test_pyspark_refusing_an_old_pandas_names_the_spark_extra() -> None:
    error = ImportError("[PACKAGE_NOT_INSTALLED] Pandas >= 2.2.0 must be installed; however, ...")
    message = str(missing_extra(error, "score"))
    assert "'spark' extra" in message and message.endswith("pip install 'fraudkeras[spark]'")


def test_a_case_only_header_difference_gets_a_hint(trained_run, small_frame, tmp_path) -> None:
    data = tmp_path / "lower.csv"
    small_frame.head(50).rename({"Time": "time", "V1": "v1"}).write_csv(data)
    done = run_cli("score", "--model", str(trained_run.run_dir), "--data", str(data),
                   "--out", str(tmp_path / "out.csv"), "--backend", BACKEND)  # fmt: skip
    assert done.returncode == 3
    (line,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert "missing column(s) Time, V1" in line
    assert "only the case differs: rename 'time' -> 'Time', 'v1' -> 'V1'" in line


def test_score_takes_a_run_folder_and_says_what_it_used(trained_run, small_parquet, tmp_path):
    done = run_cli("score", "--model", str(trained_run.run_dir), "--data", str(small_parquet),
                   "--out", str(tmp_path / "a.parquet"), "--backend", BACKEND)  # fmt: skip
    assert done.returncode == 0, done.stderr
    used = trained_run.run_dir / "model.keras"  # not exported: its .keras
    assert done.stdout.splitlines()[0] == f"scoring with {used} (keras)"
    assert pl.read_parquet(tmp_path / "a.parquet").height == 3000


@only_backend("tensorflow")  # exported artifacts run without Keras: one env is enough
def test_score_takes_an_exported_run_and_an_export_folder(exported, small_parquet, tmp_path):
    run, _ = exported
    litert = run / "export" / "model_float32.tflite"
    for model in (run, run / "export"):
        done = run_cli("score", "--model", str(model), "--data", str(small_parquet),
                       "--out", str(tmp_path / f"{model.name}.parquet"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == f"scoring with {litert} (litert)"
    saved = run_cli("score", "--model", str(run / "export" / "saved_model"), "--data",
                    str(small_parquet), "--out", str(tmp_path / "sm.parquet"))  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    foreign = [line for line in saved.stderr.splitlines() if not line.startswith("fraudkeras:")]
    assert not foreign, saved.stderr  # no oneDNN, port.cc or absl lines


@only_backend("jax")
def test_a_folder_of_csv_and_parquet_is_refused_with_the_reason(small_frame, tmp_path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    small_frame.head(1500).write_parquet(folder / "a.parquet")
    small_frame.tail(1500).write_csv(folder / "b.csv")
    done = run_cli("train", "--data", str(folder), "--out", str(tmp_path / "run"),
                   "--epochs", "1", "--backend", "jax")  # fmt: skip
    assert done.returncode == 3, done.stdout
    assert "holds 1 CSV file(s) (b.csv) beside 1 Parquet file(s)" in done.stderr
    assert not (tmp_path / "run").exists()


KILLED_SCRATCH = """
import sys, time
from pathlib import Path
from fraudkeras._core.files import atomic_dir
with atomic_dir(Path(sys.argv[1])) as scratch:
    (scratch / "half.txt").write_text("half")
    print(scratch, flush=True)
    time.sleep(600)
"""


@only_backend("jax")
def test_a_later_run_removes_the_scratch_a_killed_run_left(small_parquet, tmp_path) -> None:
    run = tmp_path / "run"
    killed = subprocess.Popen([sys.executable, "-c", KILLED_SCRATCH, str(run)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        scratch = Path(killed.stdout.readline().strip())  # type: ignore[union-attr]
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)
    assert scratch.is_dir() and scratch.name.startswith(".run.partial-")
    live = tmp_path / f".run.partial-{os.getpid()}-live"  # a process still at work: kept
    live.mkdir()
    done = run_cli("train", "--data", str(small_parquet), "--out", str(run), "--epochs", "1",
                   "--no-report", "--quiet", "--backend", "jax")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not scratch.exists() and live.is_dir() and (run / "model.keras").is_file()
    shutil.rmtree(live)
    time.sleep(0)  # nothing else left beside the run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
