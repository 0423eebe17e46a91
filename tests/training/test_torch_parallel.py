"""``train(devices=2)`` under torch: two worker processes (torch.distributed, gloo)
against the one-process run through the normal path, the reference.

The small table's stratified split has 2,100 training rows; batches of 211 rows
are uneven on two workers (105 + 106 rows) and the epoch's last batch holds 201.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fraudkeras._core.errors import ParameterError
from fraudkeras.training.train import train
from helpers import only_backend

torch_only = only_backend("torch")

OPTIONS = {"epochs": 2, "batch_size": 211, "seed": 5}
#: Measured: max |weight(N=2) - weight(N=1)| 6.0e-8 after two epochs (one float32 ulp
#: of the larger weights: the two workers' partial sums round in another order);
#: epoch losses equal to 1e-7 relative. Tolerances: a few times those.
WEIGHT_ATOL = 5e-7
LOSS_RTOL = 1e-6


@pytest.mark.parametrize("devices", [0, -1, 1.5, True])
def test_devices_must_be_a_positive_integer(small, devices) -> None:
    with pytest.raises(ParameterError, match="devices must be a positive integer"):
        train(small, devices=devices, epochs=1)


@pytest.fixture(scope="module")
def one_device(small_parquet: Path):
    """The reference: the same run in this process, on one device (the normal path)."""
    return train(small_parquet, report=False, **OPTIONS)


def _largest_gap(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [w.shape for w in a] == [w.shape for w in b]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@torch_only
def test_each_worker_takes_its_share_of_a_batch() -> None:
    from fraudkeras.backends.torch_backend import share

    for rows, world in [(211, 2), (201, 2), (1, 2), (7, 3), (256, 4)]:
        parts = [range(rows)[share(rows, rank, world)] for rank in range(world)]
        assert [i for part in parts for i in part] == list(range(rows))  # each row once
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert len(range(1)[share(1, 0, 2)]) == 0  # a one-row batch leaves rank 0 nothing


@torch_only
def test_two_workers_train_as_one_device(one_device, small_parquet: Path, tmp_path: Path) -> None:
    rows = len(one_device.split.train.y)
    assert (rows, rows % OPTIONS["batch_size"]) == (2100, 201)  # uneven batches, as planned
    out = tmp_path / "run"
    two = train(small_parquet, out=out, devices=2, report=False, **OPTIONS)

    gap = _largest_gap(two.model.get_weights(), one_device.model.get_weights())
    print(f"N=2 vs N=1: max weight gap {gap:.2e}; losses {two.history['loss']} vs "
          f"{one_device.history['loss']}")  # fmt: skip
    assert gap <= WEIGHT_ATOL
    np.testing.assert_allclose(two.history["loss"], one_device.history["loss"], rtol=LOSS_RTOL)
    assert len(two.history["loss"]) == OPTIONS["epochs"]
    assert two.metrics["epochs_run"] == one_device.metrics["epochs_run"] == OPTIONS["epochs"]
    assert two.metrics["best_epoch"] == one_device.metrics["best_epoch"]
    np.testing.assert_allclose(
        two.metrics["validation"]["pr_auc"], one_device.metrics["validation"]["pr_auc"], atol=1e-6
    )
    assert (two.metrics["devices"], one_device.metrics["devices"]) == (2, 1)
    np.testing.assert_array_equal(two.split.test.y, one_device.split.test.y)

    # the run folder, written once by rank 0, is what train() returned
    assert two.run_dir == out and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((out / "metrics.json").read_text())["devices"] == 2
    assert json.loads((out / "history.json").read_text())["loss"] == two.history["loss"]


def _group_environment(rank: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "KERAS_BACKEND": "torch",
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


@torch_only
def test_processes_started_torchrun_style_join_one_group(
    one_device, small_parquet: Path, tmp_path: Path
) -> None:
    """The multi-host path: each process started by hand with torchrun's
    variables, as on two hosts; ``fraudkeras train`` joins instead of launching."""
    from helpers import free_port

    out, port = tmp_path / "run", free_port()
    command = [
        sys.executable, "-m", "fraudkeras", "train", "--backend", "torch",
        "--data", str(small_parquet), "--out", str(out), "--quiet", "--no-report",
        *[f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()],
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            env=_group_environment(rank, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
    assert f"run saved to {out}" in results[0][0]
    assert results[1][0] == ""  # rank 1 trains, prints and writes nothing

    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert metrics["devices"] == 2
    np.testing.assert_allclose(history["loss"], one_device.history["loss"], rtol=LOSS_RTOL)
    from fraudkeras.modeling.model import load_model

    model = load_model(out / "model.keras")
    assert _largest_gap(model.get_weights(), one_device.model.get_weights()) <= WEIGHT_ATOL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _children_with(environment_entry: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and environment_entry in environ:
            found.append(int(entry.name))
    return found


@torch_only
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_killed_worker_ends_the_run_with_one_error(
    small_parquet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudkeras.cli import main

    seen: dict[str, list[int]] = {}

    def kill_rank_1() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rank_1 = _children_with(b"RANK=1")
            if rank_1:
                seen["rank 0"] = _children_with(b"RANK=0")
                os.kill(rank_1[0], signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_rank_1)
    killer.start()
    out = tmp_path / "run"
    code = main([
        "train", "--backend", "torch", "--devices", "2", "--data", str(small_parquet),
        "--out", str(out), "--quiet", "--no-report", "--epochs", "1",
    ])  # fmt: skip
    killer.join()
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 7  # TrainingError's exit code
    assert errors == ["fraudkeras: error: training worker 1 of 2 failed: killed by SIGKILL"]
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no run folder, no checkpoint
    for pid in seen["rank 0"]:  # the other worker was ended (and reaped)
        assert not Path(f"/proc/{pid}").exists()


@torch_only
def test_a_worker_s_own_error_is_the_one_reported(small_parquet: Path, tmp_path: Path) -> None:
    """Every worker fails on a batch size larger than the table: the launcher
    raises their own ParameterError, not a generic worker failure."""
    from fraudkeras._core.errors import ParameterError

    with pytest.raises(ParameterError, match="batch_size 100000 exceeds"):
        train(small_parquet, devices=2, epochs=1, batch_size=100_000, report=False)
