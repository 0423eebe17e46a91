"""Data-parallel training (``train(devices=N)``, ``fraudkeras train --devices N``).

The engines fix their device counts at start-up, so every run on several devices
is a fresh process (:func:`fraudkeras._core.devices.prepare_devices` first). The
reference is always the same work on one device: Keras's plain single-device
path, from the same initial weights and the same global batches.
"""

from __future__ import annotations

import json
from pathlib import Path

import backend_jobs
import numpy as np
import pytest

from fraudkeras._core.errors import ParameterError
from fraudkeras.cli import main
from fraudkeras.data.batches import pad_batch
from fraudkeras.training.train import resume, train
from helpers import BACKEND, MEASUREMENTS, only_backend, run_cli, run_test_job

parallel_backends = pytest.mark.skipif(
    BACKEND not in ("jax", "tensorflow"), reason="data parallelism: jax and tensorflow"
)

#: Measured largest |w(N=2) - w(N=1)| after one epoch (22 SGD steps, batches of 97,
#: every one split unevenly): jax 6e-08, tensorflow 6e-08 (float32 sums in
#: another order). The tolerance allows a few times that, and is far below what
#: a wrong loss scale moves (N x the gradient: ~1e-1 here).
WEIGHT_TOLERANCE = 5e-7


def test_pad_batch_appends_masked_copies() -> None:
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.array([0, 1, 0, 0, 1], dtype=np.int8)
    px, py, mask = pad_batch(x, y, 4)
    assert px.shape == (8, 2) and py.shape == (8,)
    np.testing.assert_array_equal(px[5:], x[:3])  # copies of the first rows
    np.testing.assert_array_equal(py, [0, 1, 0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 0, 0, 0])
    even = pad_batch(x[:4], y[:4], 2)
    assert even[0].shape == (4, 2) and even[2].tolist() == [1, 1, 1, 1]
    prepared, _, _ = pad_batch({"prepared": x}, y, 4)  # rows FraudMLP.prepare made
    np.testing.assert_array_equal(prepared["prepared"], px)


def test_resume_checks_devices_first() -> None:
    with pytest.raises(ParameterError, match="devices must be a positive integer"):
        resume("no-such-run", devices=0)


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_cli_rejects_bad_device_counts(capsys, value: str) -> None:
    assert main(["train", "--devices", value, "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fraudkeras: error: train: argument --devices: expected a positive integer, got {value!r}"
    ]


@only_backend("jax")
def test_jax_says_how_to_get_devices(small) -> None:
    import jax

    if jax.device_count() >= 2:
        pytest.skip("this process has several JAX devices")
    with pytest.raises(ParameterError) as error:
        train(small, devices=2, epochs=1)
    message = str(error.value)
    assert message.startswith("devices 2: JAX has 1 device(s)")
    assert "XLA_FLAGS=--xla_force_host_platform_device_count=2 before jax is imported" in message


@only_backend("tensorflow")
def test_tensorflow_says_how_to_get_devices(small) -> None:
    import tensorflow as tf

    tf.constant(0.0)  # TensorFlow's runtime has started: its CPU can no longer be split
    if len(tf.config.list_logical_devices("CPU")) >= 2:
        pytest.skip("this process has several TensorFlow devices")
    with pytest.raises(ParameterError) as error:
        train(small, devices=2, epochs=1)
    assert str(error.value).startswith("devices 2: TensorFlow has 1 device(s)")
    assert "prepare_devices('tensorflow', 2)" in str(error.value)


@parallel_backends
def test_one_epoch_on_two_devices_equals_one_device(small_parquet: Path, tmp_path: Path) -> None:
    """Same initial weights, same global batches (97 rows: odd, so every batch is
    split unevenly, and the last has 63), plain SGD: gradients N times too large,
    or a mean per device, would show in the weights."""
    init = tmp_path / "init.npz"
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"n{devices}.npz"
        job = ("parallel-epoch", devices, small_parquet, 97, init, out)
        if devices == 1:  # one device needs no set-up: in this process, Keras's plain path
            backend_jobs._parallel_epoch(*map(str, job[1:]))
        else:
            run_test_job(BACKEND, *job)
        with np.load(out) as saved:
            results[devices] = {name: saved[name] for name in saved.files}
    one, two = results[1], results[2]
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
    with np.load(init) as saved:
        start = saved["w3"]
    weights = sorted(k for k in one if k.startswith("w"))
    assert np.abs(one["w3"] - start).max() > 1e-3  # the epoch moved the weights
    gaps = {k: float(np.abs(two[k] - one[k]).max()) for k in weights}
    assert max(gaps.values()) < WEIGHT_TOLERANCE, gaps
    for log in ("log_loss", "log_val_loss", "log_val_pr_auc", "log_val_roc_auc"):
        assert float(two[log]) == pytest.approx(float(one[log]), abs=1e-6), log


@parallel_backends
def test_cli_run_on_two_devices_matches_one(trained_run, small_parquet: Path, tmp_path) -> None:
    """``fraudkeras train --devices 2`` (Adam, the CLI's own device set-up) against
    the same run trained in this process on one device (the ``trained_run`` fixture)."""
    out = tmp_path / "run"
    done = run_cli(
        "train", "--data", str(small_parquet), "--epochs", "2", "--batch-size", "128",
        "--seed", "7", "--devices", "2", "--no-report", "--quiet", "--out", str(out),
        env={"KERAS_BACKEND": BACKEND},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"backend {BACKEND} on 2 devices |" in done.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]  # no OUT.partial left
    reference = trained_run.run_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert metrics.pop("devices") == 2 and expected.pop("devices") == 1
    for name in MEASUREMENTS:
        metrics.pop(name), expected.pop(name)
    _assert_close(metrics, expected)
    history = json.loads((out / "history.json").read_text())
    reference_history = json.loads((reference / "history.json").read_text())
    for key in ("loss", "val_loss", "val_pr_auc", "val_roc_auc"):
        np.testing.assert_allclose(history[key], reference_history[key], atol=1e-5)


def _assert_close(actual, expected, path: str = "") -> None:
    """Nested metrics equal, numbers (in lists too) within 1e-5 (thresholds and
    counts too: a tuned threshold moves with its scores' rounding only)."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), path
        for key in expected:
            _assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            _assert_close(got, want, f"{path}[{index}]")
    elif isinstance(expected, float | int) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, abs=1e-5), path
    else:
        assert actual == expected, path


@parallel_backends
def test_resume_on_two_devices_ends_like_one_device(trained_run, small, tmp_path) -> None:
    """A run interrupted after its first epoch on one device, finished by
    ``fraudkeras train --resume RUN --devices 2``, ends with the metrics of the
    same run trained on one device without a break (``trained_run``)."""
    import keras

    class _StopAtSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(small, out=out, epochs=2, batch_size=128, seed=7, report=False,
              callbacks=[_StopAtSecondEpoch()])  # fmt: skip
    done = run_cli(
        "train", "--resume", str(out), "--devices", "2", "--no-report", "--quiet",
        env={"KERAS_BACKEND": BACKEND},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    expected = json.loads((trained_run.run_dir / "metrics.json").read_text())
    assert metrics.pop("devices") == 2 and expected.pop("devices") == 1
    for name in MEASUREMENTS:
        metrics.pop(name), expected.pop(name)
    _assert_close(metrics, expected)
