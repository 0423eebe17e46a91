"""The bad-input audit: every kind of bad table and bad model file, through every
command that reads one (and the Python loader). Each must end with its exit code,
one ``fraudkeras: error:`` line naming the file and the problem, no traceback,
and no new file or folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudkeras.cli import main
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.data.tables import load_transactions
from helpers import BACKEND


def _csv_with_duplicate(frame: pl.DataFrame, path: Path) -> None:
    text = frame.write_csv()
    header, body = text.split("\n", 1)
    lines = [f"{line},{line.split(',')[1]}" for line in body.splitlines()]
    path.write_text(f"{header},V1\n" + "\n".join(lines) + "\n")


def _set(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    series = frame[column].cast(pl.String) if isinstance(value, str) else frame[column].clone()
    return frame.with_columns(series.scatter(row, value))


def _csv_with_text_cell(frame: pl.DataFrame, path: Path) -> None:
    _set(frame, "V3", 5, "abc").write_csv(path)


#: name -> (file name, how to write it from a valid frame, words the error must contain)
BAD_TABLES: dict[str, tuple[str, Callable[[pl.DataFrame, Path], None], str]] = {
    "missing column": ("t.parquet", lambda f, p: f.drop("V4").write_parquet(p),
                       "missing column(s) V4"),
    "duplicated column": ("t.csv", _csv_with_duplicate, "V1"),
    "non-numeric value": ("t.csv", _csv_with_text_cell, "V3"),
    "NaN": ("t.parquet", lambda f, p: _set(f, "V5", 3, float("nan")).write_parquet(p), "NaN"),
    "inf": ("t.parquet", lambda f, p: _set(f, "Amount", 3, float("inf")).write_parquet(p),
            "infinite"),
    "empty file": ("t.csv", lambda f, p: p.write_bytes(b""), "t.csv"),
    "header only": ("t.csv", lambda f, p: f.head(0).write_csv(p), "no rows"),
    "not a table": ("t.parquet", lambda f, p: p.write_bytes(np.random.default_rng(0).bytes(999)),
                    "t.parquet"),
    "label 2": ("t.parquet", lambda f, p: _set(f, LABEL, 0, 2).write_parquet(p), "Class"),
    "string labels": ("t.parquet", lambda f, p: f.with_columns(
        pl.when(pl.col(LABEL) == 1).then(pl.lit("fraud")).otherwise(pl.lit("ok")).alias(LABEL)
    ).write_parquet(p), "Class"),
    "unknown suffix": ("t.xlsx", lambda f, p: f.write_csv(p), "t.xlsx"),
}  # fmt: skip

#: tables that are bad for training (need both classes, enough rows) but fine to score
TRAINING_ONLY: dict[str, tuple[str, Callable[[pl.DataFrame, Path], None], str]] = {
    "one class": ("t.parquet", lambda f, p: f.filter(pl.col(LABEL) == 0).write_parquet(p),
                  "only normal transactions"),
    "too few frauds": ("t.parquet", lambda f, p: pl.concat(
        [f.filter(pl.col(LABEL) == 1).head(2), f.filter(pl.col(LABEL) == 0).head(40)]
    ).write_parquet(p), "too few frauds"),
}  # fmt: skip


def _command(name: str, data: Path, out: Path, run: Path) -> list[str]:
    return {
        "train": ["train", "--backend", BACKEND, "--data", str(data), "--out", str(out)],
        "evaluate": ["evaluate", str(run), "--data", str(data)],
        "score": ["score", "--model", str(run / "model.keras"), "--data", str(data),
                  "--out", str(out.with_suffix(".parquet"))],
        "compare": ["compare", "--data", str(data), "--out", str(out), "--backends", BACKEND],
    }[name]  # fmt: skip


@pytest.fixture(scope="module")
def frame(small_frame: pl.DataFrame) -> pl.DataFrame:
    """300 rows, 40 of them frauds: small, but enough to split."""
    return pl.concat(
        [small_frame.filter(pl.col(LABEL) == 1).head(40),
         small_frame.filter(pl.col(LABEL) == 0).head(260)]
    ).sort("Time")  # fmt: skip


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fraudkeras: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _check(capsys, args: list[str], folder: Path, code: int, *fragments: str) -> None:
    before = sorted(p.name for p in folder.iterdir())
    assert main(args) == code
    line = _one_error_line(capsys.readouterr().err)
    for fragment in fragments:
        assert fragment in line, line
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing new, not even hidden


#: not bad at all: every reader finds the columns by name (score passes the others through)
MESSY_TABLES: dict[str, Callable[[pl.DataFrame], pl.DataFrame]] = {
    "extra column": lambda f: f.with_columns(pl.lit(1.0).alias("Merchant")),
    "misordered columns": lambda f: f.select(["V1", LABEL, "Time", *FEATURES[2:]]),
}


@pytest.mark.parametrize(
    ("command", "bad"),
    [(command, bad) for command in ("train", "evaluate", "score", "compare") for bad in BAD_TABLES],
)  # fmt: skip
def test_bad_table(capsys, trained_run, frame, tmp_path: Path, command: str, bad: str) -> None:
    name, write, words = BAD_TABLES[bad]
    data = tmp_path / name
    write(frame, data)
    args = _command(command, data, tmp_path / "out", trained_run.run_dir)
    _check(capsys, args, tmp_path, 3, str(data), words)


def test_messy_tables_are_read_by_name(capsys, trained_run, frame, tmp_path):
    clean = tmp_path / "clean.parquet"
    frame.write_parquet(clean)
    for bad, mess in MESSY_TABLES.items():
        data = tmp_path / f"{bad}.parquet"
        mess(frame).write_parquet(data)
        assert load_transactions(data).frame.equals(load_transactions(clean).frame), bad
        out = tmp_path / f"{bad}-scored.parquet"
        args = ["score", "--model", str(trained_run.run_dir / "model.keras"), "--data", str(data),
                "--out", str(out)]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        assert pl.read_parquet(out).height == frame.height


def test_fewer_rows_than_a_batch(capsys, frame, tmp_path: Path) -> None:
    data = tmp_path / "t.parquet"
    frame.write_parquet(data)
    args = _command("train", data, tmp_path / "out", tmp_path)
    _check(capsys, [*args, "--batch-size", "512"], tmp_path, 2,
           "--batch-size 512 exceeds the 210 training rows")  # fmt: skip


# -- bad model files --------------------------------------------------------------


def _damage(kind: str, run: Path) -> None:
    model = run / "model.keras"
    if kind == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    elif kind == "random bytes":
        model.write_bytes(np.random.default_rng(1).bytes(5000))
    elif kind == "missing":
        model.unlink()


@pytest.mark.parametrize("kind", ["truncated", "random bytes", "missing"])
@pytest.mark.parametrize(
    "command",
    [["evaluate"], ["threshold", "--strategy", "recall"], ["explain", "--row", "1"],
     ["report"], ["export"], ["score"]],
)  # fmt: skip
def test_bad_model_file(capsys, trained_run, small_parquet, tmp_path, kind, command) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    _damage(kind, run)
    if command == ["score"]:
        args = ["score", "--model", str(run / "model.keras"), "--data", str(small_parquet),
                "--out", str(tmp_path / "out.parquet")]  # fmt: skip
    else:
        args = [command[0], str(run), *command[1:]]
    before = sorted(p.name for p in run.iterdir())
    _check(capsys, args, tmp_path, 5, "model.keras")
    assert sorted(p.name for p in run.iterdir()) == before
