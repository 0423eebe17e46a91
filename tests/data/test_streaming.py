"""Streaming tables: the split against NumPy, the scaler moments, the epoch order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudkeras.data.parquet_table import open_table
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.data.stream_batches import epoch_batches
from fraudkeras.data.streaming import scan, split_stream, uniform_hash
from fraudkeras.modeling.features import apply_numpy


def test_stratified_split_is_the_numpy_hash(shards: Path, small_frame: pl.DataFrame) -> None:
    streamed = split_stream(scan(open_table(shards, chunk_rows=700), "stratified", 5))
    u = uniform_hash(np.arange(small_frame.height), 5)
    y = small_frame[LABEL].to_numpy()
    expected = {"validation": (u >= 0.7) & (u < 0.85), "test": u >= 0.85}
    assert streamed.n_train == int((u < 0.7).sum())
    assert streamed.train_frauds == int(y[u < 0.7].sum())
    for name, mask in expected.items():
        part = getattr(streamed.split, name)
        np.testing.assert_array_equal(part.rows, np.flatnonzero(mask))
        np.testing.assert_array_equal(part.y, y[mask])
    # only approximately 70/15/15, and stratified only in expectation
    assert abs(streamed.n_train / small_frame.height - 0.7) < 0.03
    assert abs(streamed.train_frauds / streamed.n_train - y.mean()) < 0.03


def test_time_split_cuts_by_time(shards: Path, small_frame: pl.DataFrame) -> None:
    streamed = split_stream(scan(open_table(shards, chunk_rows=512), "time"))
    time = small_frame["Time"].to_numpy()
    order = np.sort(time)
    cut_1, cut_2 = order[2100], order[2550]  # the 70 % and 85 % rows of 3,000
    assert streamed.n_train == int((time < cut_1).sum())
    np.testing.assert_array_equal(streamed.split.test.rows, np.flatnonzero(time >= cut_2))
    assert streamed.split.validation.x[:, 0].max() < streamed.split.test.x[:, 0].min()


@pytest.mark.parametrize("kind", ["stratified", "time"])
def test_scan_counts_each_part_before_it_is_read(shards: Path, kind: str) -> None:
    found = scan(open_table(shards, chunk_rows=700), kind)
    streamed = split_stream(found)
    parts = (streamed.split.validation, streamed.split.test)
    assert found.part_rows == (streamed.n_train, *(len(part.y) for part in parts))
    assert [streamed.counts[name][0] for name in ("train", "validation", "test")] == list(
        found.part_rows
    )


def test_samples_are_bounded_subsets_by_a_second_hash(
    shards: Path, small_frame: pl.DataFrame
) -> None:
    """Each part keeps at most about ``n`` rows' features: the rows whose second
    hash is below n / (the part's size), with their features as in the table."""
    found = scan(open_table(shards, chunk_rows=700), "stratified", 5)
    streamed = split_stream(found, sample_rows=300, holdout_rows=100)
    u = uniform_hash(np.arange(small_frame.height), 5)
    second = uniform_hash(np.arange(small_frame.height), 5, salt=0x5A3D_19E7)
    x = small_frame.select(FEATURES).to_numpy().astype(np.float32)
    for name, part, wanted in (("train", u < 0.7, 300), ("validation", (u >= 0.7) & (u < 0.85),
                               100), ("test", u >= 0.85, 100)):  # fmt: skip
        kept = part & (second < wanted / part.sum())
        sample = getattr(streamed.split, name)
        np.testing.assert_array_equal(sample.rows, np.flatnonzero(kept))
        np.testing.assert_array_equal(sample.x, x[kept])
        assert abs(len(sample.y) - wanted) < 4 * np.sqrt(wanted)  # binomial noise
        frauds = int(small_frame[LABEL].to_numpy()[part].sum())
        assert streamed.counts[name] == (int(part.sum()), frauds)
    whole = split_stream(found)  # below the default sizes a sample is the whole part
    np.testing.assert_array_equal(whole.split.test.rows, np.flatnonzero(u >= 0.85))


@pytest.mark.parametrize("transform", ["time_of_day_log_amount", "raw"])
def test_scaler_moments_equal_numpy(shards: Path, small_frame: pl.DataFrame, transform) -> None:
    streamed = split_stream(
        scan(open_table(shards, chunk_rows=300), "stratified", 1),
        lambda x: apply_numpy(x, transform),
    )
    u = uniform_hash(np.arange(small_frame.height), 1)
    x = small_frame.select(FEATURES).to_numpy()[u < 0.7].astype(np.float32)
    rows = apply_numpy(x, transform)
    assert streamed.moments is not None and streamed.moments.count == len(rows)
    np.testing.assert_allclose(streamed.moments.mean, rows.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(streamed.moments.variance, rows.var(axis=0), rtol=1e-10)


def test_set_scaler_equals_adapt(shards: Path) -> None:
    from fraudkeras.modeling.model import FraudMLP

    streamed = split_stream(
        scan(open_table(shards), "stratified", 1),
        lambda x: apply_numpy(x, "time_of_day_log_amount"),
    )
    x = np.concatenate([x for _, x, _ in streamed.train_chunks()])
    adapted, given = (FraudMLP(features="time_of_day_log_amount") for _ in range(2))
    adapted.adapt(x)
    assert streamed.moments is not None and streamed.moments.mean is not None
    given.set_scaler(streamed.moments.mean, streamed.moments.variance)
    for a, b in zip(adapted.scaler.get_weights(), given.scaler.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    for mine, theirs in zip([*given.hidden, given.logit], [*adapted.hidden, adapted.logit],
                            strict=True):  # fmt: skip
        mine.set_weights(theirs.get_weights())
    np.testing.assert_allclose(adapted.predict(x[:50], verbose=0), given.predict(x[:50], verbose=0),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_epoch_order_is_seeded_and_covers_every_training_row(shards: Path) -> None:
    streamed = split_stream(scan(open_table(shards, chunk_rows=250), "stratified", 2))
    train_rows = np.concatenate([x for _, x, _ in streamed.train_chunks()])

    def epoch(seed: int, number: int) -> list[np.ndarray]:
        return [x for x, _ in epoch_batches(streamed, 64, seed, number)]

    first = epoch(3, 0)
    assert all(len(b) == 64 for b in first[:-1]) and len(first) == -(-len(train_rows) // 64)
    seen = np.concatenate(first)
    key = np.lexsort(seen.T)
    np.testing.assert_array_equal(seen[key], train_rows[np.lexsort(train_rows.T)])
    for a, b in zip(first, epoch(3, 0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], epoch(3, 1)[0])
    assert not np.array_equal(first[0], epoch(4, 0)[0])
