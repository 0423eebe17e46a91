"""Tables larger than memory: many Parquet files, read a chunk of rows at a time.

A :class:`ParquetTable` is a folder or glob of Parquet files, cut into chunks
at the files' row-group boundaries (:func:`row_group_rows`, from pyarrow's metadata):
consecutive row groups of a file up to :data:`CHUNK_ROWS` rows make one chunk,
and a row group larger than that is a chunk by itself, so a chunk's size is
bounded by ``max(CHUNK_ROWS, the files' largest row group)``. Each chunk is read
with a sliced ``scan_parquet`` that covers whole row groups: polars decodes every
row group a slice touches, whole, so 65,536-row slices of 142,404-row groups
decoded each group two or three times (1.45 s against 0.46 s for a 10x epoch's
reads). Nothing here holds the table.

Splits (:func:`scan`, :func:`split_stream`) follow the in-memory ones
(:mod:`fraudkeras.data.splits`) without materialising the table, and differ from
them as follows:

- ``time``: cut points on ``Time`` from one streaming pass (counts per distinct
  ``Time`` value, so memory grows with the number of distinct times, not rows),
  at the 70/85 % row positions. Rows tied at a cut point all go to the later
  part, so sizes can differ from 70/15/15 by the size of a tie.
- ``stratified``: each row goes by a seeded hash of its global position
  (``u`` uniform in [0, 1): train below 0.7, validation below 0.85, else test).
  The proportions are only approximately 70/15/15 (binomial noise, about
  ``sqrt(n)`` rows), and the classes are stratified only in expectation: the
  hash never looks at the label. The rows differ from the in-memory split's.

Validation and test are materialised (30 % of the rows as float32 features,
labels and positions: 30 x 4 + 12 bytes a row, 112 MB per million table rows;
written into arrays of the sizes counted by :func:`scan`, so there is no second
copy while they are assembled),
so metrics, thresholds, the report and export work as for an in-memory run; so
is a bounded sample of training rows (:data:`TRAIN_SAMPLE_ROWS`, by a second
hash) for the drift reference and the int8 calibration. Training rows are only
ever streamed (:mod:`fraudkeras.data.stream_batches`).
"""

from __future__ import annotations

import glob
import hashlib
import math
import os
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core.errors import DataError
from fraudkeras.data.schema import FEATURES, LABEL, validate_frame
from fraudkeras.data.splits import HOLDOUT_FRACTION, SPLIT_KINDS, Part, Split
from fraudkeras.data.tables import read_errors

CHUNK_ROWS = 65_536
TRAIN_SAMPLE_ROWS = 100_000
TRAIN, VALIDATION, TEST = 0, 1, 2
_TRAIN_END, _VALIDATION_END = 1.0 - HOLDOUT_FRACTION, 1.0 - HOLDOUT_FRACTION / 2
_SAMPLE_SALT = 0x5A3D_19E7


@dataclass(frozen=True)
class Chunk:
    """Rows ``[offset, offset + rows)`` of ``path``; ``start`` is the first row's
    position in the whole table."""

    path: Path
    offset: int
    rows: int
    start: int


@dataclass(frozen=True)
class ParquetTable:
    """A table made of Parquet files (sorted by name), in chunks of rows."""

    source: str
    chunks: tuple[Chunk, ...]

    @property
    def n_rows(self) -> int:
        return sum(chunk.rows for chunk in self.chunks)

    def read(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's raw features (float64, :data:`FEATURES` order) and labels."""
        with read_errors(chunk.path, ".parquet"):
            frame = pl.scan_parquet(chunk.path).slice(chunk.offset, chunk.rows).collect()
        where = f"{chunk.path} (rows {chunk.offset + 1}-{chunk.offset + chunk.rows})"
        frame = validate_frame(frame, source=where)
        x = frame.select(FEATURES).to_numpy().astype(np.float64, copy=False)
        return x, frame[LABEL].to_numpy().astype(np.int32)


def parquet_files(source: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of a folder or a glob, sorted; DataError if none."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq"))
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    if not files:
        raise DataError(f"{source}: no Parquet files")
    return [f.resolve() for f in files]


def is_multi_file(source: Any) -> bool:
    """Whether ``source`` names a folder or a glob (a streamed table only)."""
    if not isinstance(source, (str, Path)):
        return False
    text = str(source)
    return Path(text).expanduser().is_dir() or any(c in text for c in "*?[")


def row_group_rows(path: str | os.PathLike[str]) -> list[int]:
    """The number of rows of each of ``path``'s row groups, in file order (read
    from the file's footer by pyarrow; polars has no row-group API)."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def open_table(source: str | os.PathLike[str], chunk_rows: int = CHUNK_ROWS) -> ParquetTable:
    """The table's chunks: runs of whole row groups (see the module docstring)."""
    chunks, start = [], 0
    for path in parquet_files(source):
        with read_errors(path, ".parquet"):
            rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())
            groups = row_group_rows(path)
        if sum(groups) != rows:
            raise DataError(f"{path}: row groups of {sum(groups)} rows, but {rows} rows")
        offset = size = 0
        for group in groups:
            if size and size + group > chunk_rows:
                chunks.append(Chunk(path, offset, size, start + offset))
                offset, size = offset + size, 0
            size += group
        if size:
            chunks.append(Chunk(path, offset, size, start + offset))
        start += rows
    if start == 0:
        raise DataError(f"{source}: no rows")
    text = str(source)
    resolved = str(Path(text).expanduser().resolve()) if Path(text).exists() else text
    return ParquetTable(resolved, tuple(chunks))


def uniform_hash(positions: np.ndarray, seed: int, salt: int = 0) -> np.ndarray:
    """A seeded hash of row positions, as floats uniform in [0, 1) (splitmix64)."""
    z = positions.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + salt) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


@dataclass(frozen=True)
class Assignment:
    """How rows are split: by hash (``stratified``) or by ``Time`` cut points."""

    kind: str
    seed: int
    cuts: tuple[float, float] = (0.0, 0.0)

    def parts(self, positions: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Each row's part: :data:`TRAIN`, :data:`VALIDATION` or :data:`TEST`."""
        if self.kind == "stratified":
            values, (low, high) = uniform_hash(positions, self.seed), (_TRAIN_END, _VALIDATION_END)
        else:
            values, (low, high) = time, self.cuts
        return (values >= low).astype(np.int8) + (values >= high).astype(np.int8)


@dataclass
class TableScan:
    """One pass over a table: its fingerprint, the split's assignment and how
    many rows it gives each part (:data:`TRAIN`, :data:`VALIDATION`, :data:`TEST`)."""

    table: ParquetTable
    assignment: Assignment
    fingerprint: dict[str, Any]
    part_rows: tuple[int, int, int] | None = None


def scan(table: ParquetTable, kind: str = "stratified", seed: int = 42) -> TableScan:
    """One streaming pass: rows, frauds and a SHA-256 of the values (chunk by
    chunk, so it differs from an in-memory table's), and for ``time`` the cut
    points at the 70 % and 85 % row positions of the ``Time`` order."""
    if kind not in SPLIT_KINDS:
        raise DataError(f"split must be one of {', '.join(SPLIT_KINDS)}, got {kind!r}")
    digest, frauds = hashlib.sha256(), 0
    part_rows = np.zeros(3, np.int64)
    hashed = Assignment(kind, seed)  # stratified: a row's part needs only its position
    times: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for chunk in table.chunks:
        x, y = table.read(chunk)
        digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(y.astype(np.int8).tobytes())
        frauds += int(y.sum())
        if kind == "stratified":
            positions = np.arange(chunk.start, chunk.start + chunk.rows)
            part_rows += np.bincount(hashed.parts(positions, x[:, 0]), minlength=3)
        if kind == "time":
            values, count = np.unique(x[:, FEATURES.index("Time")], return_counts=True)
            times.append(values)
            counts.append(count)
            if len(times) > 16:  # merge, so memory follows distinct times, not chunks
                times, counts = _merge_counts(times, counts)
    n = table.n_rows
    if frauds in (0, n):
        raise DataError(f"{table.source}: only one class; both classes are needed")
    cuts = (0.0, 0.0)
    if kind == "time":
        (values,), (count,) = _merge_counts(times, counts)
        below = np.cumsum(count) - count  # rows strictly earlier than each value
        n_rest = math.ceil(n * HOLDOUT_FRACTION)
        n_train, n_validation = n - n_rest, n_rest - math.ceil(n_rest * 0.5)
        cuts = (_cut(values, below, n_train), _cut(values, below, n_train + n_validation))
        where = Assignment(kind, seed, cuts).parts(np.zeros(len(values), np.int64), values)
        part_rows = np.bincount(where, weights=count, minlength=3).astype(np.int64)
    fingerprint = {"rows": n, "frauds": frauds, "sha256": digest.hexdigest(), "stream": True}
    sizes = (int(part_rows[TRAIN]), int(part_rows[VALIDATION]), int(part_rows[TEST]))
    return TableScan(table, Assignment(kind, seed, cuts), fingerprint, sizes)


def _merge_counts(
    times: list[np.ndarray], counts: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    values, inverse = np.unique(np.concatenate(times), return_inverse=True)
    merged = np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)
    return [values], [merged]


def _cut(values: np.ndarray, below: np.ndarray, position: int) -> float:
    """The first ``Time`` with at least ``position`` rows strictly before it."""
    index = int(np.searchsorted(below, position, side="left"))
    return float(values[index]) if index < len(values) else math.inf


@dataclass
class _Collected:
    x: list[np.ndarray] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def add(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> None:
        self.x.append(x.astype(np.float32))
        self.y.append(y)
        self.rows.append(rows)

    def part(self) -> Part:
        if not self.y:
            return Part(np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, np.int32),
                        np.zeros(0, np.int64))  # fmt: skip
        return Part(np.concatenate(self.x), np.concatenate(self.y), np.concatenate(self.rows))


class _Filled:
    """A part of known size, filled chunk by chunk (no list of pieces to concatenate)."""

    def __init__(self, rows: int) -> None:
        self.x = np.empty((rows, len(FEATURES)), np.float32)
        self.y = np.empty(rows, np.int32)
        self.rows = np.empty(rows, np.int64)
        self.at = 0

    def add(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> None:
        end = self.at + len(y)
        if end > len(self.y):
            raise DataError("the table changed while it was being read")
        self.x[self.at : end], self.y[self.at : end], self.rows[self.at : end] = x, y, rows
        self.at = end

    def part(self) -> Part:
        if self.at != len(self.y):
            raise DataError("the table changed while it was being read")
        return Part(self.x, self.y, self.rows)


@dataclass
class Moments:
    """Row count, mean and sum of squared deviations, merged chunk by chunk in
    float64 (Chan et al.), so the variance does not lose digits to cancellation."""

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        n_b = len(values)
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray:
        """The population variance (what ``keras.layers.Normalization`` adapts)."""
        assert self.m2 is not None
        return self.m2 / self.count


@dataclass
class StreamSplit:
    """A streamed table's split: validation and test in memory, a bounded sample
    of training rows as ``split.train``, the training rows' count and, when a
    transform was given, the moments of their transformed features."""

    scan: TableScan
    split: Split
    n_train: int
    train_frauds: int
    moments: Moments | None

    def train_chunks(
        self, files: Container[Path] | None = None
    ) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray]]:
        """Each chunk's training rows: ``(chunk, x float32, y)``; with ``files``,
        only the chunks of those files (the others are not read)."""
        yield from _train_rows(self.scan, files)

    def files(self) -> list[Path]:
        """The table's files, in order."""
        return list(dict.fromkeys(chunk.path for chunk in self.scan.table.chunks))


def _train_rows(
    found: TableScan, files: Container[Path] | None = None
) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray]]:
    for chunk in found.table.chunks:
        if files is not None and chunk.path not in files:
            continue
        x, y = found.table.read(chunk)
        positions = np.arange(chunk.start, chunk.start + chunk.rows)
        keep = found.assignment.parts(positions, x[:, 0]) == TRAIN
        yield chunk, x[keep].astype(np.float32), y[keep]


def split_stream(
    found: TableScan,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    sample_rows: int = TRAIN_SAMPLE_ROWS,
) -> StreamSplit:
    """One more pass: validation and test, a training sample, and (with
    ``transform``, raw float32 rows -> float64 features) the moments of the
    transformed training rows."""
    table, assignment = found.table, found.assignment
    parts: dict[int, _Collected | _Filled] = {TRAIN: _Collected()}  # the sample's size varies
    for name in (VALIDATION, TEST):
        sizes = found.part_rows
        parts[name] = _Collected() if sizes is None else _Filled(sizes[name])
    moments = Moments() if transform is not None else None
    n_train = train_frauds = 0
    expected_train = table.n_rows * _TRAIN_END
    rate = min(1.0, sample_rows / max(expected_train, 1.0))
    for chunk in table.chunks:
        x, y = table.read(chunk)
        positions = np.arange(chunk.start, chunk.start + chunk.rows)
        where = assignment.parts(positions, x[:, 0])
        train = where == TRAIN
        n_train += int(train.sum())
        train_frauds += int(y[train].sum())
        if moments is not None and transform is not None:
            moments.add(transform(x[train].astype(np.float32)))
        sampled = train & (uniform_hash(positions, assignment.seed, _SAMPLE_SALT) < rate)
        for name, keep in ((TRAIN, sampled), (VALIDATION, where == VALIDATION),
                           (TEST, where == TEST)):  # fmt: skip
            parts[name].add(x[keep], y[keep], positions[keep])
    split = Split(
        kind=assignment.kind,
        seed=assignment.seed,
        train=parts[TRAIN].part(),
        validation=parts[VALIDATION].part(),
        test=parts[TEST].part(),
    )
    counts = {"train": (n_train, train_frauds)}
    counts.update({label: (len(p.y), int(p.y.sum())) for label, p in
                   (("validation", split.validation), ("test", split.test))})  # fmt: skip
    for label, (rows, frauds) in counts.items():
        if frauds in (0, rows):
            raise DataError(
                f"{table.source}: too few frauds to split: the {assignment.kind} {label} split "
                f"gets {frauds} of {rows} rows as fraud"
            )
    return StreamSplit(found, split, n_train, train_frauds, moments)


def summary(streamed: StreamSplit) -> dict[str, Any]:
    """The split's sizes for ``data.json`` (training: all rows, not the sample)."""
    record: dict[str, Any] = streamed.split.summary()
    record["train"] = {"rows": streamed.n_train, "frauds": streamed.train_frauds}
    record["train_sample"] = streamed.split.train.summary()
    record["stream"] = True
    return record
