"""Spark benchmark (one run): rows/s of ``fraudkeras.spark`` in ``local[2]``
against local ``score`` on the same table (the 10x table of
``scripts/make_large.py``), both writing Parquet with the float32 LiteRT file.
Spark's start-up (JVM, session, Python workers, first task) is timed apart
from its steady state, which is the best of ``--repeats`` full passes.

    python scripts/make_large.py --data ../shared/data/creditcard.parquet --factor 10 --out L10
    python scripts/bench_spark.py --model RUN/export/model_float32.tflite --data L10
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import polars as pl

ROWS_PER_DAY = 1_000_000_000
KEEP = ("TransactionID", "Class")  # what local score writes beside its two columns


def bench_local(model: Path, shards: Path, scratch: Path) -> tuple[int, float]:
    """Local ``score`` on one Parquet file holding every shard (copying is not timed)."""
    from fraudkeras.deploy.scoring import score

    single = scratch / "all.parquet"
    pl.scan_parquet(sorted(shards.glob("*.parquet"))).sink_parquet(single)
    start = time.perf_counter()
    result = score(model, single, scratch / "local-out.parquet", id_column="TransactionID")
    return result.rows, time.perf_counter() - start


def bench_spark(model: Path, shards: Path, scratch: Path, repeats: int) -> tuple[int, float, float]:
    """Rows, start-up seconds and the best steady-state pass in seconds."""
    import fraudkeras.spark

    start = time.perf_counter()
    spark = fraudkeras.spark.spark_session("local[2]")
    warm = spark.read.parquet(str(shards)).limit(1000)
    fraudkeras.spark.score(warm, model, keep=KEEP).write.parquet(str(scratch / "warm"))
    startup = time.perf_counter() - start
    df = spark.read.parquet(str(shards))
    rows = df.count()
    best = float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        scored = fraudkeras.spark.score(df, model, keep=KEEP)
        scored.write.parquet(str(scratch / f"spark-out-{i}"))
        best = min(best, time.perf_counter() - start)
    spark.stop()
    return rows, startup, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a float32 .tflite or .onnx")
    parser.add_argument("--data", type=Path, required=True, help="a folder of Parquet shards")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("fraudkeras").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        local_rows, local_s = bench_local(args.model, args.data, scratch)
        rows, startup, spark_s = bench_spark(args.model, args.data, scratch, args.repeats)
    assert rows == local_rows
    local_rate, spark_rate = rows / local_s, rows / spark_s
    print(f"{rows:,d} rows, {args.model.name}, Parquet in and out, 2 cores\n")
    print("| engine | start-up s | scoring s | rows/s |")
    print("|---|---:|---:|---:|")
    print(f"| local `score` | - | {local_s:.2f} | {local_rate:,.0f} |")
    print(f"| Spark local[2] | {startup:.1f} | {spark_s:.2f} | {spark_rate:,.0f} |")
    print(f"\nSpark steady state / local: {spark_rate / local_rate:.2f}x (target >= 0.5x)")
    per_core = spark_rate / 2
    hours = ROWS_PER_DAY / per_core / 3600
    print(
        f"1 billion rows a day: {ROWS_PER_DAY / 86_400:,.0f} rows/s on average; at "
        f"{per_core:,.0f} rows/s per executor core that is {hours:.1f} core-hours a day, "
        f"{hours / 16 * 60:.0f} minutes on 16 cores (plus start-up, once per job)"
    )


if __name__ == "__main__":
    main()
