"""Scale benchmark: does streaming training keep its memory flat and
its speed per row as the table grows 10x, on every backend?

Tables are written by ``scripts/make_large.py`` (seeded resampled copies of the
real table, 284,807 rows each) into ``--workdir`` and reused from there: ``x1``
(one shard) and ``x10`` (ten shards, the first the same as ``x1``'s). Cases,
each ``fraudkeras train`` in its own process under ``KERAS_BACKEND=<backend>``
(``--no-report``, a throw-away run folder):

- ``memory-1x``: the in-memory path on ``x1``'s one Parquet file;
- ``stream-1x``, ``stream-10x``: ``--stream`` on the folders ``x1`` and ``x10``;
- ``cached-10x`` (``--cache``): ``--stream --stream-cache`` on ``x10``: later
  epochs read the decoded training rows from disk instead of Parquet;
- ``stream-100x`` (``--hundred``, one backend): 28.5 M rows, more than the
  in-memory path accepts on this machine.

Seconds per epoch come from the run's ``history.json`` (``epoch_seconds``): the
median over the epochs after the first (which compiles), or the one epoch when
``--epochs 1``; s/row divides it by the training rows of ``data.json``. Peak
RSS is the child process's own ``ru_maxrss`` (``os.wait4``): the whole run,
the split, evaluation and saving the run folder included (saving a ``.keras``
imports TensorFlow, a fixed ~0.4 GB); ``rss@metrics`` is ``metrics.json``'s
``peak_rss_mb``, taken after evaluation and before saving. Targets, per
backend: peak RSS of ``stream-10x`` <= 1.25x that of ``stream-1x`` and <= 1.5 GB;
s/row of ``stream-10x`` <= 1.3x that of ``memory-1x``. Cases are interleaved
(``--rounds``; per round each backend's three cases run back to back) since this
machine is shared; each case's figures are medians over its rounds.

    python scripts/bench_scale.py [--data PATH] [--workdir DIR] [--backends jax torch tensorflow]
        [--epochs 2] [--rounds 1] [--scales 1 10] [--no-memory] [--cache]
        [--hundred [--hundred-backend jax]]

e.g. ``--rounds 2`` for the table in the README, and ``--backends jax --scales 100
--no-memory`` for the 100x row (or ``--hundred`` to add it to a full run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "fraudkeras-bench-scale"
BACKENDS = ("jax", "torch", "tensorflow")
RSS_RATIO, RSS_LIMIT_MB, SPEED_RATIO = 1.25, 1500.0, 1.3
SHARD_BYTES = 70 * 2**20  # a make_large.py shard on disk, with room to spare


@dataclass
class Result:
    case: str
    backend: str
    train_rows: int
    epoch_seconds: float
    peak_rss_mb: float
    rss_at_metrics_mb: float
    wall_seconds: float

    @property
    def seconds_per_row(self) -> float:
        return self.epoch_seconds / self.train_rows


def table_dir(workdir: Path, data: str, factor: int) -> Path:
    """``workdir/x<factor>``, written by make_large.py unless it is there already."""
    out = workdir / f"x{factor}"
    if out.is_dir():
        return out
    free = shutil.disk_usage(workdir).free
    if free < factor * SHARD_BYTES * 1.2:
        raise SystemExit(f"{workdir}: {free / 2**30:.1f} GiB free, too little for x{factor}")
    command = [sys.executable, str(ROOT / "scripts" / "make_large.py"), "--data", data,
               "--factor", str(factor), "--out", str(out)]  # fmt: skip
    subprocess.run(command, check=True)
    return out


def run_case(case: str, backend: str, source: Path, epochs: int, workdir: Path) -> Result:
    """One ``fraudkeras train`` in a fresh process; its own peak RSS from ``wait4``."""
    runs = Path(tempfile.mkdtemp(dir=workdir, prefix="runs-"))
    out = runs / "run"
    command = [sys.executable, "-m", "fraudkeras", "train", "--backend", backend,
               "--data", str(source), "--epochs", str(epochs), "--patience", str(epochs),
               "--quiet", "--no-report", "--out", str(out)]  # fmt: skip
    if case.startswith("stream"):
        command.append("--stream")
    if case.startswith("cached"):
        command += ["--stream", "--stream-cache"]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        started = time.perf_counter()
        with tempfile.TemporaryFile() as log:
            child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - started
            if child.returncode != 0:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
                raise SystemExit(f"{case} {backend} failed ({child.returncode}):\n{tail}")
        history = json.loads((out / "history.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        data = json.loads((out / "data.json").read_text())
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    seconds = history["epoch_seconds"]
    timed = seconds[1:] or seconds
    return Result(
        case=case,
        backend=backend,
        train_rows=int(data["split"]["train"]["rows"]),
        epoch_seconds=statistics.median(timed),
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        rss_at_metrics_mb=float(metrics["peak_rss_mb"]),
        wall_seconds=wall,
    )


def median_result(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.case,
        first.backend,
        first.train_rows,
        statistics.median(r.epoch_seconds for r in results),
        statistics.median(r.peak_rss_mb for r in results),
        statistics.median(r.rss_at_metrics_mb for r in results),
        statistics.median(r.wall_seconds for r in results),
    )


def report(results: dict[tuple[str, str], Result], backends: list[str]) -> list[str]:
    lines = [
        "| backend | case | train rows | s/epoch | rows/s | us/row | peak RSS MB | rss@metrics MB "
        "| process s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (_, _), r in results.items():
        lines.append(
            f"| {r.backend} | {r.case} | {r.train_rows:,d} | {r.epoch_seconds:.3f} "
            f"| {r.train_rows / r.epoch_seconds:,.0f} | {r.seconds_per_row * 1e6:.3f} "
            f"| {r.peak_rss_mb:,.0f} | {r.rss_at_metrics_mb:,.0f} | {r.wall_seconds:.1f} |"
        )
    lines += ["", "| backend | check | value | target | |", "|---|---|---:|---|---|"]
    for backend in backends:
        one, ten = results.get((backend, "stream-1x")), results.get((backend, "stream-10x"))
        memory = results.get((backend, "memory-1x"))
        checks: list[tuple[str, float, str, bool]] = []
        if one and ten:
            ratio = ten.peak_rss_mb / one.peak_rss_mb
            checks.append(("peak RSS stream-10x / stream-1x", ratio, f"<= {RSS_RATIO}x",
                           ratio <= RSS_RATIO))  # fmt: skip
        if ten:
            checks.append(("peak RSS stream-10x (MB)", ten.peak_rss_mb, f"<= {RSS_LIMIT_MB:.0f}",
                           ten.peak_rss_mb <= RSS_LIMIT_MB))  # fmt: skip
        cached = results.get((backend, "cached-10x"))
        for name, streamed in (("stream-10x", ten), ("cached-10x", cached)):
            if streamed and memory:
                ratio = streamed.seconds_per_row / memory.seconds_per_row
                checks.append((f"s/row {name} / memory-1x", ratio, f"<= {SPEED_RATIO}x",
                               ratio <= SPEED_RATIO))  # fmt: skip
        for name, value, target, met in checks:
            shown = f"{value:,.0f}" if value > 100 else f"{value:.3f}x"
            lines.append(f"| {backend} | {name} | {shown} | {target} "
                         f"| {'met' if met else '**missed**'} |")  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the table to grow")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR,
        help=f"generated shards, reused if present (default {DEFAULT_WORKDIR})",
    )  # fmt: skip
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--epochs", type=int, default=2, help="the first is not timed if >= 2")
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 10],
                        help="streamed table sizes (the in-memory case is always 1x)")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true", help="skip the in-memory case")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions")
    parser.add_argument("--hundred", action="store_true", help="also stream a 100x table")
    parser.add_argument("--cache", action="store_true",
                        help="also stream 10x with --stream-cache (cached-10x)")  # fmt: skip
    parser.add_argument("--hundred-backend", default="jax", choices=BACKENDS)
    args = parser.parse_args()
    if not Path(args.data).is_file():
        parser.error(f"{args.data}: not found")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]), flush=True)

    cases: list[tuple[str, str, Path]] = []  # (backend, case, source), in run order
    x1 = table_dir(args.workdir, args.data, 1)
    for backend in args.backends:
        if not args.no_memory:
            cases.append((backend, "memory-1x", x1 / "part-00000.parquet"))
        for factor in args.scales:
            cases.append((backend, f"stream-{factor}x", table_dir(args.workdir, args.data, factor)))
        if args.cache:
            cases.append((backend, "cached-10x", table_dir(args.workdir, args.data, 10)))
    if args.hundred:
        cases.append((args.hundred_backend, "stream-100x",
                      table_dir(args.workdir, args.data, 100)))  # fmt: skip

    runs: dict[tuple[str, str], list[Result]] = {}
    for round_ in range(args.rounds):
        for backend, case, source in cases:
            if case == "stream-100x" and round_ > 0:
                continue  # once is enough, and it takes minutes
            result = run_case(case, backend, source, args.epochs, args.workdir)
            runs.setdefault((backend, case), []).append(result)
            print(
                f"round {round_ + 1} {backend:10s} {case:11s} {result.epoch_seconds:8.3f} s/epoch "
                f"{result.peak_rss_mb:7.0f} MB peak ({result.wall_seconds:.0f} s)",
                flush=True,
            )
    results = {key: median_result(values) for key, values in runs.items()}
    print(
        f"\n{args.epochs} epochs, batch 256, medians over {args.rounds} interleaved round(s), "
        f"{os.cpu_count()} cores; s/epoch: the epochs after the first"
    )
    print("\n".join(report(results, args.backends)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
