"""Row-group-aligned chunks, the epoch order over them, read-ahead and the
NumPy preparation of streamed chunks."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudkeras._core.errors import DataError
from fraudkeras.data.parquet_table import open_table, row_group_rows
from fraudkeras.data.schema import FEATURES
from fraudkeras.data.stream_batches import epoch_batches
from fraudkeras.data.streaming import scan, split_stream, uniform_hash
from helpers import only_backend


@pytest.fixture(scope="module")
def grouped(small_frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 3,000 rows as files of 1,000, 1,100 and 900 rows in row groups of <= 100."""
    folder = tmp_path_factory.mktemp("grouped")
    for i, (start, end) in enumerate(((0, 1000), (1000, 2100), (2100, 3000))):
        small_frame[start:end].write_parquet(folder / f"part-{i}.parquet", row_group_size=100)
    return folder


@pytest.mark.parametrize("group", [1, 7, 100, 333, None])
def test_row_group_rows_are_the_written_row_groups(tmp_path: Path, group: int | None) -> None:
    n = 1000
    frame = pl.DataFrame({"a": np.arange(n), "b": np.linspace(0, 1, n), "c": ["x"] * n,
                          "d": [True, False] * (n // 2)})  # fmt: skip
    path = tmp_path / "t.parquet"
    frame.write_parquet(path, row_group_size=group, statistics=True)
    size = group or n
    assert row_group_rows(path) == [min(size, n - s) for s in range(0, n, size)]


def test_a_file_that_is_not_parquet_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        open_table(path)


def test_chunks_are_whole_row_groups_covering_every_row_once(
    grouped: Path, small_frame: pl.DataFrame
) -> None:
    table = open_table(grouped, chunk_rows=250)
    # whole row groups of <= 250 rows: 2 groups of 100 per chunk, files' tails shorter
    assert [c.rows for c in table.chunks] == [200] * 5 + [200] * 5 + [100] + [200] * 4 + [100]
    assert all(c.offset % 100 == 0 for c in table.chunks)
    assert [c.start for c in table.chunks] == list(np.cumsum([0] + [c.rows for c in
                                                   table.chunks])[:-1])  # fmt: skip
    x = np.concatenate([table.read(c)[0] for c in table.chunks])
    np.testing.assert_array_equal(x, small_frame.select(FEATURES).to_numpy())
    # a row group larger than chunk_rows is a chunk by itself
    assert {c.rows for c in open_table(grouped, chunk_rows=50).chunks} == {100}


def test_rows_at_reads_the_rows_asked_for(grouped: Path, small_frame: pl.DataFrame) -> None:
    table = open_table(grouped, chunk_rows=250)
    asked = np.array([2999, 0, 1500, 1499, 7, 1500])  # any order, repeats, across files
    expected = small_frame.select(FEATURES).to_numpy()[asked]
    np.testing.assert_array_equal(table.rows_at(asked), expected)
    assert table.rows_at(np.zeros(0, np.int64)).shape == (0, len(FEATURES))
    with pytest.raises(DataError, match="rows outside its 3000 rows"):
        table.rows_at(np.array([3000]))


def test_epoch_order_over_aligned_chunks(grouped: Path, small_frame: pl.DataFrame) -> None:
    streamed = split_stream(scan(open_table(grouped, chunk_rows=250), "stratified", 2))
    u = uniform_hash(np.arange(small_frame.height), 2)
    reference = small_frame.select(FEATURES).to_numpy()[u < 0.7].astype(np.float32)

    def epoch(seed: int, number: int, ahead: int = 2) -> list[np.ndarray]:
        batches = epoch_batches(streamed, 64, seed, number, buffer_rows=500,
                                ahead=ahead)  # fmt: skip
        return [x for x, _ in batches]

    first = epoch(3, 0)
    assert all(len(b) == 64 for b in first[:-1]) and len(first) == -(-len(reference) // 64)
    seen = np.concatenate(first)  # every training row exactly once
    np.testing.assert_array_equal(seen[np.lexsort(seen.T)], reference[np.lexsort(reference.T)])
    for again in (epoch(3, 0), epoch(3, 0, ahead=0)):  # replayed; buffers made ahead or not
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], epoch(3, 1)[0])
    # an abandoned epoch (fit restarts one on an out-of-order index) stops its reader
    partial = epoch_batches(streamed, 64, 3, 0, buffer_rows=500)
    next(partial)
    partial.close()
    assert not [t for t in threading.enumerate() if t.name == "fraudkeras-buffers"]


def test_a_read_error_in_the_background_is_raised_to_the_consumer(
    grouped: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "table"
    shutil.copytree(grouped, folder)
    streamed = split_stream(scan(open_table(folder, chunk_rows=250), "stratified", 2))
    (folder / "part-2.parquet").write_bytes(b"no longer parquet")
    with pytest.raises(DataError, match=r"part-2\.parquet"):
        for _ in epoch_batches(streamed, 64, 3, 0, buffer_rows=500, ahead=1):
            pass
    assert not [t for t in threading.enumerate() if t.name == "fraudkeras-buffers"]


def test_prepared_chunks_equal_model_prepare(grouped: Path) -> None:
    import keras

    from fraudkeras.modeling.features import apply_numpy
    from fraudkeras.modeling.model import FraudMLP

    transform = "time_of_day_log_amount"
    streamed = split_stream(scan(open_table(grouped, chunk_rows=250), "stratified", 2),
                            lambda x: apply_numpy(x, transform))  # fmt: skip
    model = FraudMLP(features=transform)
    assert streamed.moments is not None and streamed.moments.mean is not None
    model.set_scaler(streamed.moments.mean, streamed.moments.variance)
    prepare = model.numpy_preparer()
    raw = list(epoch_batches(streamed, 64, 1, 0, buffer_rows=500))
    prepared = list(epoch_batches(streamed, 64, 1, 0, prepare, buffer_rows=500))
    assert [len(y) for _, y in raw] == [len(y) for _, y in prepared]
    np.testing.assert_array_equal(np.concatenate([y for _, y in raw]),
                                  np.concatenate([y for _, y in prepared]))  # fmt: skip
    p = np.concatenate([x for x, _ in prepared])
    assert p.dtype == np.float32
    x = np.concatenate([x for x, _ in raw])
    expected = model.standardize(model.transform(x))  # what ``prepare`` compiles, eagerly
    np.testing.assert_allclose(p, keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5)


@only_backend("tensorflow")
def test_the_tf_data_pipeline_gives_the_streamed_batches(grouped: Path) -> None:
    """TensorFlow's streamed input (whole buffers cut into batches by ``tf.data``)
    gives each epoch exactly the batches of the Python path, in order."""
    from fraudkeras.backends import current
    from fraudkeras.data.stream_batches import StreamBatches

    streamed = split_stream(scan(open_table(grouped, chunk_rows=250), "stratified", 2))
    stream = StreamBatches(streamed, 64, seed=3, key="rows")
    pipeline = current().feed(stream)
    for epoch in (0, 1):
        stream.epoch = epoch
        got = [(x["rows"].numpy(), y.numpy()) for x, y in pipeline]
        expected = list(epoch_batches(streamed, 64, 3, epoch))
        assert len(got) == len(expected) == len(stream)
        for (x, y), (want_x, want_y) in zip(got, expected, strict=True):
            np.testing.assert_array_equal(x, want_x)
            np.testing.assert_array_equal(y, want_y)
