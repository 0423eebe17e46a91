"""Splits of a table larger than memory (a :class:`~fraudkeras.data.parquet_table.ParquetTable`),
in streaming passes over its chunks.

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

No part is held whole. Each part keeps a bounded sample of its rows' features
(by a second seeded hash): up to :data:`TRAIN_SAMPLE_ROWS` training rows (drift
reference, int8 calibration) and :data:`HOLDOUT_SAMPLE_ROWS` validation and test
rows (validation after each epoch, feature importance, export checks); below
those sizes (the 1x table: 42,721 validation rows) a sample is the whole part.
Validation and test are scored whole in one more pass
(:meth:`StreamSplit.holdout_chunks`), keeping only what metrics, thresholds and
the report need of each row (label, probability, amount, time, position: 33
bytes a row instead of the features' 132; :mod:`fraudkeras.runs.scoring`).
Training rows are only ever streamed (:mod:`fraudkeras.data.stream_batches`);
with a cache folder (:attr:`StreamSplit.cache`, ``--stream-cache``) each chunk's
training rows are also written there as float32 the first time they are read
(124 bytes a row on disk, not in memory) and read back from there afterwards,
so later epochs skip Parquet decoding (most of a streamed epoch's data work).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core.errors import DataError, OutputError
from fraudkeras.data.parquet_table import Chunk, ParquetTable
from fraudkeras.data.schema import FEATURES
from fraudkeras.data.splits import HOLDOUT_FRACTION, SPLIT_KINDS, Part, Split

TRAIN_SAMPLE_ROWS = 100_000
HOLDOUT_SAMPLE_ROWS = 100_000
TRAIN, VALIDATION, TEST = 0, 1, 2
_TRAIN_END, _VALIDATION_END = 1.0 - HOLDOUT_FRACTION, 1.0 - HOLDOUT_FRACTION / 2
_SAMPLE_SALT = 0x5A3D_19E7
_TIME = FEATURES.index("Time")


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

    def parts_of(self, chunk: Chunk, x: np.ndarray) -> np.ndarray:
        """Each of a chunk's rows' part (``x``: the chunk's raw features)."""
        positions = np.arange(chunk.start, chunk.start + chunk.rows)
        return self.parts(positions, x[:, _TIME])


@dataclass
class TableScan:
    """One pass over a table: its fingerprint, the split's assignment and how
    many rows it gives each part (:data:`TRAIN`, :data:`VALIDATION`, :data:`TEST`)."""

    table: ParquetTable
    assignment: Assignment
    fingerprint: dict[str, Any]
    part_rows: tuple[int, int, int]


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
            part_rows += np.bincount(hashed.parts_of(chunk, x), minlength=3)
        if kind == "time":
            values, count = np.unique(x[:, _TIME], return_counts=True)
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
class _Sample:
    """A part's sampled rows, collected chunk by chunk."""

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


@dataclass
class StreamSplit:
    """A streamed table's split: bounded samples of each part as ``split``
    (see the module docstring), each part's row and fraud counts and, when a
    transform was given, the moments of the transformed training rows."""

    scan: TableScan
    split: Split
    counts: dict[str, tuple[int, int]]
    moments: Moments | None
    #: where each chunk's training rows are kept once read (``--stream-cache``)
    cache: Path | None = None

    @property
    def n_train(self) -> int:
        return self.counts["train"][0]

    @property
    def train_frauds(self) -> int:
        return self.counts["train"][1]

    def train_part(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's training rows: raw features (float32) and labels; with
        :attr:`cache`, from its file there once the chunk has been read."""
        kept = None if self.cache is None else self.cache / f"rows-{chunk.start:012d}.npy"
        if kept is not None and kept.is_file():
            rows = np.load(kept)
            return rows[:, :-1], rows[:, -1].astype(np.int32)
        assignment = self.scan.assignment
        x, y = self.scan.table.read_selected(
            chunk, lambda positions, times: assignment.parts(positions, times) == TRAIN
        )
        if kept is not None:  # features and label (0/1, exact in float32) in one array
            scratch = kept.with_name(f"{kept.stem}.{os.getpid()}.tmp.npy")
            try:
                np.save(scratch, np.column_stack([x, y.astype(np.float32)]))
                os.replace(scratch, kept)  # whole or absent, even if the run is killed
            except OSError as error:
                scratch.unlink(missing_ok=True)
                raise OutputError(
                    f"{self.cache}: cannot keep the stream cache ({error})"
                ) from error
        return x, y

    def train_chunks(
        self, files: Container[Path] | None = None
    ) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray]]:
        """Each chunk's training rows: ``(chunk, x float32, y)``; with ``files``,
        only the chunks of those files (the others are not read)."""
        for chunk in self.scan.table.chunks:
            if files is None or chunk.path in files:
                yield (chunk, *self.train_part(chunk))

    def holdout_chunks(self) -> Iterator[tuple[str, Part]]:
        """Validation and test, whole, a chunk at a time: ``("validation" | "test",
        that chunk's rows of the part)`` (for scoring them without holding them)."""
        table, assignment = self.scan.table, self.scan.assignment
        for chunk in table.chunks:
            x, y = table.read(chunk)
            where = assignment.parts_of(chunk, x)
            positions = np.arange(chunk.start, chunk.start + chunk.rows)
            for label, part in (("validation", VALIDATION), ("test", TEST)):
                keep = where == part
                if keep.any():
                    yield label, Part(x[keep].astype(np.float32), y[keep], positions[keep])

    def files(self) -> list[Path]:
        """The table's files, in order."""
        return list(dict.fromkeys(chunk.path for chunk in self.scan.table.chunks))


def _sample_rates(found: TableScan, train_rows: int, holdout_rows: int) -> np.ndarray:
    """Each part's sampling rate, from its size (a hash keeps a row when its
    value is below the rate, so the samples' sizes are approximate)."""
    wanted = (train_rows, holdout_rows, holdout_rows)
    return np.array(
        [min(1.0, want / max(size, 1)) for want, size in zip(wanted, found.part_rows, strict=True)]
    )


def split_stream(
    found: TableScan,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    sample_rows: int = TRAIN_SAMPLE_ROWS,
    holdout_rows: int = HOLDOUT_SAMPLE_ROWS,
) -> StreamSplit:
    """One more pass: each part's counts and sample, and (with ``transform``,
    raw float32 rows -> float64 features) the moments of the transformed
    training rows."""
    table, assignment = found.table, found.assignment
    samples = {part: _Sample() for part in (TRAIN, VALIDATION, TEST)}
    moments = Moments() if transform is not None else None
    counts = np.zeros((3, 2), np.int64)  # rows and frauds of each part
    rates = _sample_rates(found, sample_rows, holdout_rows)
    for chunk in table.chunks:
        x, y = table.read(chunk)
        positions = np.arange(chunk.start, chunk.start + chunk.rows)
        where = found.assignment.parts_of(chunk, x)
        counts[:, 0] += np.bincount(where, minlength=3)
        counts[:, 1] += np.bincount(where, weights=y, minlength=3).astype(np.int64)
        if moments is not None and transform is not None:
            moments.add(transform(x[where == TRAIN].astype(np.float32)))
        sampled = uniform_hash(positions, assignment.seed, _SAMPLE_SALT) < rates[where]
        for part, sample in samples.items():
            keep = sampled & (where == part)
            sample.add(x[keep], y[keep], positions[keep])
    split = Split(
        kind=assignment.kind,
        seed=assignment.seed,
        train=samples[TRAIN].part(),
        validation=samples[VALIDATION].part(),
        test=samples[TEST].part(),
    )
    named = {label: (int(counts[part, 0]), int(counts[part, 1])) for label, part in
             (("train", TRAIN), ("validation", VALIDATION), ("test", TEST))}  # fmt: skip
    for label, (rows, frauds) in named.items():
        if frauds in (0, rows):
            raise DataError(
                f"{table.source}: too few frauds to split: the {assignment.kind} {label} split "
                f"gets {frauds} of {rows} rows as fraud"
            )
    return StreamSplit(found, split, named, moments)


def summary(streamed: StreamSplit) -> dict[str, Any]:
    """The split's sizes for ``data.json``: every part's rows and frauds, and
    the samples' (what is kept of each part's features)."""
    record: dict[str, Any] = {"kind": streamed.split.kind, "seed": streamed.split.seed}
    for label, (rows, frauds) in streamed.counts.items():
        record[label] = {"rows": rows, "frauds": frauds}
    record["samples"] = {label: getattr(streamed.split, label).summary()
                         for label in ("train", "validation", "test")}  # fmt: skip
    record["stream"] = True
    return record
