"""Several processes, each reading its own Parquet files: JAX
(``keras.distribution.initialize``), TensorFlow (``TF_CONFIG``,
``MultiWorkerMirroredStrategy``) and torch (a torchrun-style group started
outside fraudkeras), two processes on 127.0.0.1 against an independent
one-process reference fed the same global batches.

The 3,000-row table is written as four files of 750 rows; process ``p`` reads
files ``p`` and ``p + 2`` (file ``i`` -> process ``i % 2``). The stratified split
over all files gives each process about 1,050 training rows, unevenly, so the
last global batches hold fewer rows of one process than of the other.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import only_backend

jax_only = only_backend("jax")
torch_only = only_backend("torch")
tensorflow_only = only_backend("tensorflow")

OPTIONS = {"epochs": 1, "batch_size": 128, "seed": 7}
PROCESSES = 2
#: Measured: max |weight(2 processes) - weight(reference)| after one epoch: JAX and
#: torch 6.0e-8, TensorFlow 3.3e-7 (float32 rounding: the reference sums each global
#: batch's rows in another order, and TensorFlow's replicas weigh rows by their share
#: of the global batch before Keras divides by the replica count). Tolerance: a few
#: times the largest.
WEIGHT_ATOL = 1e-6


@pytest.fixture(scope="module")
def files(small_frame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("four-files")
    for i in range(4):
        small_frame[i * 750 : (i + 1) * 750].write_parquet(folder / f"part-{i}.parquet")
    return folder


def _environment(backend: str, process: int, port: int) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))
    if backend == "jax":
        group = {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port},127.0.0.1:{port + 1}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": str(PROCESSES),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(process),
        }
    elif backend == "tensorflow":
        workers = [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"]
        cluster = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": process}}
        group = {"TF_CONFIG": json.dumps(cluster)}
    else:  # as torchrun sets it
        group = {"RANK": str(process), "LOCAL_RANK": str(process), "WORLD_SIZE": str(PROCESSES),
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": backend, **group}


def _reference(files: Path) -> list[np.ndarray]:
    """One process, the plain Keras path (no distribution, no mask): the same
    seeded model, fed global batches built here the documented way: process
    ``p``'s training rows (its files, in table order) in the order
    ``default_rng([seed, epoch, p]).permutation``, ``batch_size / 2`` of them a
    step, concatenated process 0 first; a process whose rows have run out adds
    none."""
    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.parquet_table import open_table
    from fraudkeras.data.streaming import scan, split_stream
    from fraudkeras.modeling.features import PREPARED, apply_numpy
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.building import build_model

    config = TrainConfig(**OPTIONS)
    found = scan(open_table(files), config.split, config.split_seed)
    streamed = split_stream(found, lambda x: apply_numpy(x, config.features))
    labels = np.repeat([0, 1], [streamed.n_train - streamed.train_frauds, streamed.train_frauds])
    weights = class_weights(labels, config.class_weight)
    model = build_model(config, weights, streamed.split.train.x, streamed)
    paths = sorted(files.glob("*.parquet"))
    local = config.batch_size // PROCESSES
    shards = []
    for p in range(PROCESSES):
        mine = set(paths[p::PROCESSES])
        parts = [(x, y) for chunk, x, y in streamed.train_chunks() if chunk.path in mine]
        x, y = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
        order = np.random.default_rng([config.seed, 0, p]).permutation(len(y))
        shards.append((model.prepare(x)[order], y[order]))
    steps = max(math.ceil(len(y) / local) for _, y in shards)
    batches = [
        (
            {PREPARED: np.concatenate([x[s * local : (s + 1) * local] for x, _ in shards])},
            np.concatenate([y[s * local : (s + 1) * local] for _, y in shards]),
        )
        for s in range(steps)
    ]

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, index: int):
            return batches[index]

    model.fit(Batches(), epochs=1, shuffle=False, verbose=0)
    return _trainable(model)


def _run_two(backend: str, data: Path, tmp_path: Path) -> tuple[Path, list[np.ndarray], float]:
    """Two processes of a group train ``data``; process 0's run folder, its
    weights and the seconds taken (each process's own checks asserted)."""
    from fraudkeras.modeling.model import load_model
    from helpers import free_port

    runs = [tmp_path / f"process-{p}" for p in range(PROCESSES)]
    port = free_port()
    started = time.perf_counter()
    processes = []
    for p, folder in enumerate(runs):
        folder.mkdir()
        command = [
            sys.executable, "-m", "fraudkeras", "train", "--backend", backend,
            "--data", str(data), "--out", str(folder / "run"), "--quiet", "--no-report",
            *[f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()],
        ]  # fmt: skip
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        processes.append(subprocess.Popen(command, env=_environment(backend, p, port), **pipes))
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
    out = runs[0] / "run"
    assert f"run saved to {out}" in results[0][0]
    assert "run saved" not in results[1][0]  # process 1 prints no summary (gloo: its own line),
    assert list(runs[1].iterdir()) == []  # trains and writes nothing
    assert sorted(p.name for p in runs[0].iterdir()) == ["run"]  # no checkpoint left
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["devices"] == PROCESSES and metrics["epochs_run"] == 1
    weights = _trainable(load_model(out / "model.keras"))
    return out, weights, time.perf_counter() - started


def _trainable(model) -> list[np.ndarray]:
    """The weights training moves (the calibration map is fitted after training)."""
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]


def _gap(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def _two_processes_each_reading_their_own_files(backend: str, files: Path, tmp_path: Path) -> None:
    reference = _reference(files)
    _, trained, seconds = _run_two(backend, files, tmp_path)
    gap = _gap(trained, reference)
    print(f"two processes: {seconds:.1f} s; largest weight gap from the reference {gap:.2e}")
    assert gap <= WEIGHT_ATOL


@jax_only
def test_two_jax_processes_each_reading_its_own_files(files: Path, tmp_path: Path) -> None:
    _two_processes_each_reading_their_own_files("jax", files, tmp_path)


@tensorflow_only
def test_two_tensorflow_workers_each_reading_its_own_files(files: Path, tmp_path: Path) -> None:
    _two_processes_each_reading_their_own_files("tensorflow", files, tmp_path)


@tensorflow_only
def test_two_tensorflow_workers_on_one_file_train_as_one_process(
    small_parquet: Path, tmp_path: Path
) -> None:
    """One file: each worker feeds its slice of every (padded) global batch, so
    the result is one process's ``train`` of the same table."""
    from fraudkeras.training.train import train

    _, trained, _ = _run_two("tensorflow", small_parquet, tmp_path)
    alone = _trainable(train(small_parquet, report=False, **OPTIONS).model)
    gap = _gap(trained, alone)
    print(f"two workers on one file against one process: largest weight gap {gap:.2e}")
    assert gap <= WEIGHT_ATOL


@torch_only
def test_two_torchrun_processes_each_reading_its_own_files(files: Path, tmp_path: Path) -> None:
    _two_processes_each_reading_their_own_files("torch", files, tmp_path)


def test_a_shard_s_local_batches_are_padded_and_masked() -> None:
    """Local batches of exactly ``batch_size`` rows for ``steps`` steps: the shard's
    rows once each in its own seeded order, then masked copies."""
    from fraudkeras.data.batches import EpochBatches

    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    batches = EpochBatches(x, y, batch_size=4, seed=3, own=1, steps=4)
    got = [batches[i] for i in range(len(batches))]
    assert len(got) == 4 and all(len(b[1]) == 4 for b in got)
    masks = np.concatenate([b[2] for b in got])
    real = np.concatenate([b[1] for b in got])[masks == 1]
    np.testing.assert_array_equal(real, np.random.default_rng([3, 0, 1]).permutation(10))
    assert masks.sum() == 10 and not got[3][2].any()  # the fourth step: padding only
    assert not np.array_equal(EpochBatches(x, y, 4, 3, own=0, steps=4)[0][1], got[0][1])


def test_each_process_feeds_its_slice_of_a_padded_batch() -> None:
    from fraudkeras.data.batches import EpochBatches

    x, y = np.arange(7, dtype=np.float32)[:, None], np.arange(7)
    padded = EpochBatches(x, y, 7, seed=0, pad_to=2)  # one batch of 7 rows, padded to 8
    slices = [EpochBatches(x, y, 7, seed=0, pad_to=2, process=p, processes=2)[0] for p in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([s[1] for s in slices]), padded[0][1])
    np.testing.assert_array_equal(slices[1][2], [1, 1, 1, 0])
    np.testing.assert_array_equal(np.sort(padded[0][1][:7]), y)
