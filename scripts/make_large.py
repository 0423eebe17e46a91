"""Write an N-times version of the transaction table as Parquet shards, for
scale tests and benchmarks: each shard is one resampled copy of the table
(rows drawn with replacement, small Gaussian noise on V1..V28), its ``Time``
continuing where the previous copy's two days ended, with a unique
``TransactionID``. Seeded: the same arguments give the same files.

    python scripts/make_large.py --data ../shared/data/creditcard.parquet --factor 10 --out DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from fraudkeras.data.schema import FEATURES
from fraudkeras.data.tables import load_transactions

V_COLUMNS = [name for name in FEATURES if name.startswith("V")]
NOISE = 0.01  # in units of each V column's standard deviation


def shard(frame: pl.DataFrame, index: int, rng: np.random.Generator, span: float) -> pl.DataFrame:
    """One resampled copy of ``frame``, its times shifted ``index`` spans later."""
    rows = rng.integers(0, frame.height, size=frame.height)
    copy = frame[rows]
    stds = copy.select(V_COLUMNS).std().row(0)
    noise = {
        name: pl.col(name) + rng.normal(0.0, NOISE * std, size=copy.height)
        for name, std in zip(V_COLUMNS, stds, strict=True)
    }
    ids = pl.int_range(pl.len(), dtype=pl.Int64) + index * frame.height
    return (
        copy.with_columns(**noise, Time=pl.col("Time") + index * span)
        .sort("Time")
        .with_columns(ids.alias("TransactionID"))
        .select("TransactionID", *frame.columns)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="auto", help="the table to grow (default: auto)")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True, help="a new folder of shards")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists already")
    frame = load_transactions(args.data).frame
    span = 86_400.0 * np.ceil((frame["Time"].max() + 1) / 86_400.0)  # whole days
    rng = np.random.default_rng(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=f".{args.out.name}."))
    try:
        for index in range(args.factor):
            part = shard(frame, index, rng, span)
            part.write_parquet(scratch / f"part-{index:05d}.parquet", compression="zstd")
        os.replace(scratch, args.out)  # all shards or none
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.factor * frame.height:,d} rows in {args.factor} shards -> {args.out}")


if __name__ == "__main__":
    main()
