"""Real workflows, as a user runs them: plain Keras loading after
``import fraudkeras``, a quiet terminal with a correct progress bar, run folders
that survive a move, refused non-finite options and resume changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudkeras._core.backend import BACKENDS, is_installed
from helpers import BACKEND, REPO, only_backend, run_cli

#: third-party lines that must never reach a user's terminal
NOISE = ("absl", "oneDNN", "XNNPACK", "fully_quantize", "WARNING:", "I0000", "E0000")


def _keras_load(backend: str, model: Path, keras_first: bool) -> subprocess.Popen[str]:
    """A started process that loads ``model`` with plain Keras after both imports."""
    imports = "import keras, fraudkeras" if keras_first else "import fraudkeras, keras"
    code = (
        f"{imports}\nimport numpy as np\n"
        f"m = keras.saving.load_model({str(model)!r})\n"
        "x = np.load(__import__('sys').argv[1])\n"
        "print(type(m).__name__, keras.backend.backend(), float(m(x, return_logits=True)[0, 0]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(model.parent / "x.npy")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**__import__("os").environ, "KERAS_BACKEND": backend},
    )  # fmt: skip


@only_backend("jax")  # starts every backend itself
def test_plain_keras_load_model_works_after_import_fraudkeras(trained_run, tmp_path) -> None:
    model = tmp_path / "model.keras"
    shutil.copy(trained_run.run_dir / "model.keras", model)
    x = trained_run.split.test.x[:1].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = float(trained_run.model(x, return_logits=True)[0, 0])
    # Keras imported first (the order the 3 x 3 matrix does not take) everywhere, and
    # TensorFlow, whose import probes for Keras, in both orders
    cases = [(b, True) for b in BACKENDS if is_installed(b)]
    cases += [("tensorflow", False)] if is_installed("tensorflow") else []
    started = [_keras_load(backend, model, keras_first) for backend, keras_first in cases]
    for (backend, _), process in zip(cases, started, strict=True):  # run side by side
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        name, ran_under, logit = out.split()
        assert (name, ran_under) == ("FraudMLP", backend)
        assert float(logit) == pytest.approx(expected, abs=1e-5)


def test_progress_bar_counts_every_epoch_and_the_terminal_stays_quiet(
    small_parquet: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = run_cli(
        "train", "--backend", BACKEND, "--data", str(small_parquet), "--epochs", "3",
        "--patience", "3", "--batch-size", "512", "--out", str(out), "--no-plots",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    for epoch in (1, 2, 3):
        assert f"Epoch {epoch}/3" in text
    assert text.count("val_pr_auc") >= 3
    assert not [line for line in text.splitlines() if any(n in line for n in NOISE)], text
    assert sum("fraudkeras: data:" in line for line in text.splitlines()) == 1  # loaded once


@only_backend("tensorflow")  # export and score run under TensorFlow's environment
def test_export_and_score_print_no_third_party_lines(trained_run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    done = run_cli("export", str(run), "--formats", "litert,litert-int8,onnx")
    assert done.returncode == 0, done.stderr
    # which figures the table compares, and why they differ from evaluate's
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    note = " ".join(done.stdout.split())
    reference = f"(PR-AUC {manifest['reference_pr_auc']:.4f})"
    assert f"against the Keras model's float32 output on the test split {reference}" in note
    run_pr_auc = json.loads((run / "metrics.json").read_text())["test"]["pr_auc"]
    assert f"use float64 probabilities (PR-AUC {run_pr_auc:.4f})" in note
    scored = run_cli(
        "score", "--model", str(run / "export" / "model_int8.tflite"),
        "--data", trained_run.data["source"], "--out", str(tmp_path / "s.parquet"),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    for result in (done, scored):
        noisy = [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]
        assert not noisy, result.stderr


@only_backend("torch")  # finding data by path: the backend changes nothing
def test_a_run_folder_moved_with_its_data_keeps_working(
    trained_run, small_parquet: Path, tmp_path: Path
) -> None:
    """The data is found beside the run where it was at training time; after a
    separate move, --data points at it; other data is refused by fingerprint."""
    moved = tmp_path / "elsewhere"
    data = moved / "data" / "small.parquet"
    run = moved / "runs" / "run"
    shutil.copytree(trained_run.run_dir, run)
    data.parent.mkdir(parents=True)
    shutil.copy(small_parquet, data)
    record = json.loads((run / "data.json").read_text())
    record["source"] = str(tmp_path / "gone" / "small.parquet")  # the old place is gone
    record["relative_to_run"] = "../../data/small.parquet"
    (run / "data.json").write_text(json.dumps(record))
    done = run_cli("evaluate", str(run), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data_matches"] is True

    shutil.move(data, tmp_path / "moved-again.parquet")
    lost = run_cli("explain", str(run), "--row", "3")
    assert lost.returncode == 3
    assert "no longer there; pass --data" in lost.stderr
    found = run_cli(
        "explain", str(run), "--row", "3", "--data", str(tmp_path / "moved-again.parquet")
    )
    assert found.returncode == 0, found.stderr

    other = tmp_path / "other.parquet"
    import polars as pl

    pl.read_parquet(small_parquet).head(2000).write_parquet(other)
    refused = run_cli("threshold", str(run), "--data", str(other))
    assert refused.returncode == 3
    assert "not the data" in refused.stderr and "pass --data the training file" in refused.stderr


@pytest.mark.parametrize(
    "option", [("--review-cost", "inf"), ("--learning-rate", "nan"), ("--target-recall", "1e999")]
)
def test_non_finite_options_are_refused(option: tuple[str, str], tmp_path: Path) -> None:
    done = run_cli("train", "--data", "sample", "--out", str(tmp_path / "r"), *option)
    assert done.returncode == 2
    assert f"argument {option[0]}: expected a finite number" in done.stderr
    assert not (tmp_path / "r").exists()


def test_resume_refuses_options_that_would_change_the_run(tmp_path: Path) -> None:
    done = run_cli("train", "--resume", str(tmp_path / "run"), "--epochs", "20")
    assert done.returncode == 2
    assert "exactly as it was configured; drop --epochs" in done.stderr


@only_backend("jax")
def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    """``examples/python_api.py`` (copied into the README), then the examples the
    documentation embeds that continue from the run it writes."""
    example = REPO / "examples" / "python_api.py"
    assert f"```python\n{example.read_text()}```" in (REPO / "README.md").read_text()
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows scored" in done.stdout and (tmp_path / "runs/api/report/report.md").is_file()
    for name, printed in (("analysis.py", "most important: V"), ("fine_tune.py", "fine-tuned p:")):
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / name)],
            capture_output=True, text=True, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
        assert printed in done.stdout, name
    assert json.loads((tmp_path / "runs/api/config.json").read_text())["threshold_strategy"] == (
        "cost"
    )  # analysis.py retuned it
    from fraudkeras.modeling.model import load_model

    before, after = (
        load_model(tmp_path / "runs/api" / n) for n in ("model.keras", "fine_tuned.keras")
    )
    pairs = zip(before.trainable_weights, after.trainable_weights, strict=True)
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs) > 0
    for a, b in zip(before.non_trainable_weights, after.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the scaler stays
