"""Inference benchmark: one transaction's latency (p50/p99) and whole-table
throughput for every way fraudkeras can serve a model, measured in one run.

Cases: Keras ``predict`` under each backend, a direct compiled call under each
backend (``jax.jit`` of ``stateless_call``; the torch module under
``torch.no_grad``; a ``tf.function``), the SavedModel signature, every LiteRT
file and ONNX (onnxruntime). Each backend's cases run in their own process
(a process cannot switch backends); the artifacts run in a TensorFlow one.
Then ``fraudkeras score`` with the float32 LiteRT file on the full table, and
on a table ten times its size (2.8 M rows) for peak memory.

It trains a small run on the bundled sample and exports it first (about a
minute), unless ``--run`` names an exported run folder.

    python scripts/bench_inference.py [--data PATH] [--run RUN_DIR] [--repeats 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
BACKENDS = ("jax", "torch", "tensorflow")
ARTIFACTS = {
    "SavedModel": "saved_model",
    "LiteRT float32": "model_float32.tflite",
    "LiteRT float16": "model_float16.tflite",
    "LiteRT dynamic int8": "model_dynamic_int8.tflite",
    "LiteRT int8": "model_int8.tflite",
    "ONNX": "model.onnx",
}
TARGET_P99_US = 10.0  # LiteRT, one transaction
TARGET_SCORE_S = 2.0  # fraudkeras score, full table, LiteRT float32
TARGET_RSS_MB = 1024  # fraudkeras score, 2.8 M rows


def latency_us(call, row: np.ndarray, repeats: int) -> tuple[float, float]:
    """p50 and p99 of one call on one transaction, in microseconds."""
    for _ in range(min(100, repeats)):  # warm up: compile, allocate
        call(row)
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter_ns()
        call(row)
        times[i] = time.perf_counter_ns() - start
    return float(np.percentile(times, 50) / 1e3), float(np.percentile(times, 99) / 1e3)


def throughput(call, x: np.ndarray) -> float:
    """Rows per second for the whole table in one call (best of 3)."""
    call(x)
    best = min(_timed(call, x) for _ in range(3))
    return len(x) / best


def _timed(call, x: np.ndarray) -> float:
    start = time.perf_counter()
    call(x)
    return time.perf_counter() - start


def backend_cases(run: Path, data: str, repeats: int) -> dict[str, dict[str, float]]:
    """Keras predict and a direct compiled call, under this process's backend."""
    import keras

    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import load_model

    backend = keras.backend.backend()
    model = load_model(run / "model.keras")
    x = load_transactions(data).features().astype(np.float32)
    row = x[:1]
    cases = {f"Keras predict ({backend})": lambda v: model.predict(v, verbose=0, batch_size=8192)}
    if backend == "jax":
        import jax

        # Copies: Keras' own predict donates the variables' buffers.
        trainable = [np.array(v) for v in model.trainable_variables]
        frozen = [np.array(v) for v in model.non_trainable_variables]
        jitted = jax.jit(lambda t, f, v: model.stateless_call(t, f, v)[0])
        state = jax.device_put((trainable, frozen))
        cases["jax.jit (jax)"] = lambda v: jitted(*state, v).block_until_ready()
    elif backend == "torch":
        import torch

        def direct(v: np.ndarray):
            with torch.no_grad():
                return model(torch.from_numpy(v)).numpy()

        cases["torch no_grad call (torch)"] = direct
    else:
        import tensorflow as tf

        compiled = tf.function(lambda v: model(v), reduce_retracing=True)
        cases["tf.function (tensorflow)"] = lambda v: compiled(v).numpy()
    return {
        name: {"p50_us": p50, "p99_us": p99, "rows_per_s": throughput(call, x)}
        for name, call in cases.items()
        for p50, p99 in [latency_us(call, row, repeats)]
    }


def artifact_cases(run: Path, data: str, repeats: int) -> dict[str, dict[str, float]]:
    """Every exported artifact, opened the way ``fraudkeras score`` opens it."""
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.deploy.artifacts import open_artifact

    x = load_transactions(data).features().astype(np.float32)
    results = {}
    for name, file in ARTIFACTS.items():
        artifact = open_artifact(run / "export" / file)
        p50, p99 = latency_us(artifact.predict, x[:1], repeats)
        rate = throughput(artifact.predict, x)
        results[name] = {"p50_us": p50, "p99_us": p99, "rows_per_s": rate}
    return results


def in_subprocess(backend: str, kind: str, run: Path, data: str, repeats: int) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, __file__, "--worker", kind, "--run", str(run), "--data", data]
    done = subprocess.run(
        [*command, "--repeats", str(repeats)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{kind} under {backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


_MEASURED_MAIN = (
    "import resource, sys\n"
    "from fraudkeras.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak-rss-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def cli(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``fraudkeras`` command, in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED_MAIN, *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"fraudkeras {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    peak_kb = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak-rss-kb")
    )
    return wall, peak_kb / 1024


def score_in_process(run: Path, data: str, out: Path) -> float:
    """Seconds for ``fraudkeras.score`` alone: imports and interpreter start excluded."""
    from fraudkeras.deploy.artifacts import open_artifact
    from fraudkeras.deploy.scoring import score

    model = run / "export" / ARTIFACTS["LiteRT float32"]
    open_artifact(model)  # the first interpreter start pays one-off library loading
    start = time.perf_counter()
    score(model, data, out, force=True)
    return time.perf_counter() - start


def prepare_run(workdir: Path) -> Path:
    run = workdir / "run"
    for args in (
        ("train", "--backend", "jax", "--data", "sample", "--epochs", "3", "--quiet",
         "--out", str(run)),
        ("export", str(run)),
    ):  # fmt: skip
        cli(*args)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--run", type=Path, help="an exported run folder (default: train one)")
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--worker", choices=("backend", "artifacts"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = backend_cases if args.worker == "backend" else artifact_cases
        print(json.dumps(work(args.run, args.data, args.repeats)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        run = args.run or prepare_run(workdir)
        results: dict[str, dict[str, float]] = {}
        for backend in BACKENDS:
            results |= in_subprocess(backend, "backend", run, args.data, args.repeats)
        results |= in_subprocess("tensorflow", "artifacts", run, args.data, args.repeats)
        table = pl.read_parquet(args.data)
        n_rows = table.height

        print(f"one transaction ({args.repeats} calls) and the whole table ({n_rows:,d} rows)")
        print(f"{'case':32s} {'p50 µs':>9s} {'p99 µs':>9s} {'rows/s':>12s}")
        for name, r in results.items():
            print(f"{name:32s} {r['p50_us']:9.1f} {r['p99_us']:9.1f} {r['rows_per_s']:12,.0f}")

        litert = results["LiteRT float32"]
        keras_jax = results["Keras predict (jax)"]
        print(
            f"\nLiteRT float32 p99 {litert['p99_us']:.1f} µs (target ≤ {TARGET_P99_US:g}); "
            f"Keras predict (jax) p50 is {keras_jax['p50_us'] / litert['p50_us']:,.0f}x LiteRT's"
        )
        seconds = score_in_process(run, args.data, workdir / "scored.parquet")
        model = str(run / "export" / ARTIFACTS["LiteRT float32"])
        wall, _ = cli("score", "--model", model, "--data", args.data,
                      "--out", str(workdir / "scored.parquet"), "--force")  # fmt: skip
        print(
            f"fraudkeras score, {n_rows:,d} rows, LiteRT float32: {seconds:.2f} s in process "
            f"(target ≤ {TARGET_SCORE_S:g}), {wall:.2f} s for the whole command"
        )
        big = workdir / "big.parquet"
        pl.concat([table] * 10).write_parquet(big)
        in_memory_mb = 10 * table.estimated_size() / 2**20
        del table
        wall, peak = cli("score", "--model", model, "--data", str(big),
                         "--out", str(workdir / "big-scored.parquet"))  # fmt: skip
        print(
            f"fraudkeras score, {10 * n_rows:,d} rows: {wall:.1f} s, peak RSS {peak:,.0f} MB "
            f"(target ≤ {TARGET_RSS_MB}); the table would take {in_memory_mb:,.0f} MB in memory, "
            f"so the peak is {peak / in_memory_mb:.2f}x a whole-file read"
        )


if __name__ == "__main__":
    main()
