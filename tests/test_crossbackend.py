"""Numerical parity across backends, in the spirit of Keras's integration_tests/
numerical_test.py, through the command CI users run: ``fraudkeras parity`` (the
same initial weights in one .keras file, the same batches in the same order, each
backend in its own process through the model's own ``fit``)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import numpy_reference as reference
import pytest

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.errors import BackendError, ModelFileError
from fraudkeras._core.subprocesses import run_job
from fraudkeras.parity import ParityResult, pair_gap, step_losses, summary, write_junit
from helpers import numpy_model_inputs, only_backend, run_cli, run_test_job

# float32 with different kernels and summation orders, over 24 Adam steps: measured gaps
# loss 7.8e-7, weights 8.9e-8, predictions 6.0e-7 (fraudkeras parity on the sample)
TOLERANCE = 5e-6


def test_other_job_failures_are_backend_errors() -> None:
    with pytest.raises(BackendError, match=r"attribute under jax failed: .*Error"):
        run_test_job("jax", "attribute", "too", "few")


def test_step_losses_undo_the_running_mean() -> None:
    per_step = np.array([0.9, 0.5, 0.25, 0.125])
    sizes = np.array([128, 128, 128, 56])  # 440 rows, batch 128
    running = np.cumsum(per_step * sizes) / np.cumsum(sizes)
    np.testing.assert_allclose(step_losses(running, 440, 128), per_step, rtol=1e-12)


def test_job_errors_keep_their_kind_across_the_process(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"absent\.keras: no such model file"):
        run_job("jax", "predict", tmp_path / "x.npy", tmp_path / "p.npz", tmp_path / "absent.keras")


@only_backend("jax")  # no Keras: once per tox run is enough
def test_a_gap_beyond_the_tolerance_fails_its_pair_in_junit(tmp_path: Path) -> None:
    base = {"w0": np.zeros(3), "step_losses": np.array([0.5, 0.4]), "predictions": np.zeros(4)}
    moved = {**base, "predictions": np.array([0.0, 0.0, 3e-5, 0.0])}
    pairs = (pair_gap("jax", "torch", base, base), pair_gap("jax", "tensorflow", base, moved))
    result = ParityResult(("jax", "torch", "tensorflow"), 2, 1e-5, pairs, {"jax": 1.0})
    assert not result.passed and pairs[1].failed(1e-5) == ["predictions"]
    assert "jax vs tensorflow" in summary(result) and "FAIL (predictions)" in summary(result)
    write_junit(result, tmp_path / "parity.xml")
    suite = ElementTree.parse(tmp_path / "parity.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("6", "1")
    (failed,) = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert (failed.get("classname"), failed.get("name")) == ("parity.jax_vs_tensorflow",
                                                             "predictions")  # fmt: skip


@only_backend("jax")  # spawns every backend itself; once per tox run is enough
def test_parity_command_agrees_across_backends(small_parquet: Path, tmp_path: Path) -> None:
    installed = [b for b in BACKENDS if is_installed(b)]
    if len(installed) < 2:
        pytest.skip("needs at least two backends installed")
    keep, junit = tmp_path / "parity", tmp_path / "parity.xml"
    done = run_cli("parity", "--data", str(small_parquet), "--steps", "20", "--backends",
                   ",".join(installed), "--tolerance", str(TOLERANCE), "--junit", str(junit),
                   "--keep", str(keep))  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    assert f"{len(installed)} backends agree within {TOLERANCE:g}" in done.stdout

    suite = ElementTree.parse(junit).getroot()
    pairs = len(installed) * (len(installed) - 1) // 2
    assert (suite.get("tests"), suite.get("failures")) == (str(3 * pairs), "0")
    gaps = [float(case.findtext("system-out").split()[-1]) for case in suite.iter("testcase")]
    assert max(gaps) <= TOLERANCE

    # independent of the command's own comparison: every backend's first step
    # matches the float64 NumPy loss at the initial weights
    from fraudkeras.modeling.model import load_model

    initial = load_model(keep / "initial.keras")
    with np.load(keep / "batches.npz") as batches:
        x, y = batches["x"][:128], batches["y"][:128]
    weights = reference.weights_of(initial)
    logits = reference.logits(weights, numpy_model_inputs(initial.features, x))
    first_loss = reference.weighted_bce(y, logits, *initial.class_weight)
    for backend in installed:
        with np.load(keep / f"{backend}.npz") as result:
            assert len(result["step_losses"]) == 20
            assert result["step_losses"][0] == pytest.approx(first_loss, rel=1e-5), backend
            assert np.max(np.abs(result["w3"] - weights.params[0])) > 1e-4  # training moved it


@only_backend("jax")  # spawns two backends; once per tox run is enough
def test_parity_command_exits_non_zero_beyond_the_tolerance(tmp_path: Path) -> None:
    installed = [b for b in ("jax", "torch", "tensorflow") if is_installed(b)]
    if len(installed) < 2:
        pytest.skip("needs at least two backends installed")
    done = run_cli("parity", "--backends", ",".join(installed[:2]), "--steps", "2",
                   "--tolerance", "0")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DISAGREE within 0" in done.stdout and "FAIL (" in done.stdout
