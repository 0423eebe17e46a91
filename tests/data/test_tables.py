from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.utils import Bunch

from fraudkeras._core.errors import DataError
from fraudkeras.data import tables as data_module
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.data.tables import cached_openml_path, load_transactions, sample_path
from helpers import SHARED_DATA

SAMPLE_SHA256 = "4a979910a381a7f278682527ce74f80c5f13f4750db9fe7801dea4bbb0038e58"


def test_bundled_sample_is_the_verified_file() -> None:
    assert hashlib.sha256(sample_path().read_bytes()).hexdigest() == SAMPLE_SHA256
    assert (sample_path().parent / "README.md").read_text().count("Dal Pozzolo") == 1


def test_sample_loads_with_counts_and_origin(sample) -> None:
    assert (sample.n_rows, sample.n_frauds) == (20492, 492)
    assert sample.source == "sample" and sample.origin == "bundled sample"
    assert sample.features().shape == (20492, 30) and sample.features().dtype == np.float64


@pytest.mark.skipif(
    not (SHARED_DATA / "creditcard-sample.parquet").exists(), reason="no shared data"
)
def test_sample_matches_the_shared_copy(sample) -> None:
    shared = pl.read_parquet(SHARED_DATA / "creditcard-sample.parquet")
    np.testing.assert_array_equal(sample.features(), shared.select(FEATURES).to_numpy())
    np.testing.assert_array_equal(sample.labels(), shared[LABEL].to_numpy())


def test_csv_and_parquet_copies_share_a_fingerprint(small_frame, tmp_path: Path) -> None:
    small_frame.write_csv(tmp_path / "t.csv")
    small_frame.write_parquet(tmp_path / "t.parquet")
    from_csv = load_transactions(tmp_path / "t.csv")
    from_parquet = load_transactions(tmp_path / "t.parquet")
    assert from_csv.fingerprint() == from_parquet.fingerprint()
    assert from_csv.fingerprint()["rows"] == small_frame.height
    assert from_csv.source == str((tmp_path / "t.csv").resolve())


def test_fingerprint_changes_with_one_value(small_frame, tmp_path: Path) -> None:
    small_frame.write_parquet(tmp_path / "a.parquet")
    changed = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(1.0).otherwise(pl.col("V7")).alias("V7")
    )
    changed.write_parquet(tmp_path / "b.parquet")
    a, b = load_transactions(tmp_path / "a.parquet"), load_transactions(tmp_path / "b.parquet")
    assert a.fingerprint()["sha256"] != b.fingerprint()["sha256"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "file is empty"),
        ("data.txt", b"a,b\n1,2\n", "unsupported file type '.txt'"),
        ("noise.parquet", b"\x00\x01not parquet at all" * 10, "not a readable Parquet file"),
        ("header.csv", (",".join([*FEATURES, LABEL]) + "\n").encode(), "no rows"),
        ("bad.csv", b"\xff\xfe\x00garbage\n\x00\x00", "missing column"),
    ],
)
def test_unreadable_files_raise_data_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_transactions(path)
    assert str(path) in str(caught.value)


def test_folder_is_not_a_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        load_transactions(tmp_path)


def test_csv_with_a_text_cell_names_the_column(small_frame, tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    small_frame.write_csv(path)
    lines = path.read_text().splitlines()
    cells = lines[4].split(",")
    cells[5] = "oops"
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"non-numeric feature column\(s\) V5"):
        load_transactions(path)


def fake_fetch_openml(frame: pl.DataFrame, calls: list[int]):
    """Stands in for sklearn's fetch_openml: same arrays, labels as strings."""

    def fetch(**kwargs: object) -> Bunch:
        calls.append(int(kwargs["data_id"]))
        return Bunch(
            data=frame.select(FEATURES).to_numpy(),
            target=np.array([str(v) for v in frame[LABEL].to_list()], dtype=object),
            feature_names=list(FEATURES),
        )

    return fetch


def test_openml_download_is_converted_cached_and_reused(
    small_frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn.datasets

    calls: list[int] = []
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml(small_frame, calls))
    monkeypatch.delenv("FRAUDKERAS_OFFLINE")
    first = load_transactions("openml")
    assert calls == [1597]
    assert cached_openml_path().exists()
    assert first.labels().dtype == np.int32 and first.n_frauds == int(small_frame[LABEL].sum())
    np.testing.assert_array_equal(first.features(), small_frame.select(FEATURES).to_numpy())

    monkeypatch.setenv("FRAUDKERAS_OFFLINE", "1")
    second = load_transactions("openml")  # from the cache, no second download
    assert calls == [1597]
    assert second.fingerprint() == first.fingerprint()
    assert load_transactions("auto").source == "openml"  # auto prefers the cached full table


def test_failed_download_in_auto_falls_back_to_sample(
    monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import sklearn.datasets

    def unreachable(**kwargs: object) -> Bunch:
        # what scikit-learn does before it gives up: a warning naming its own file
        warnings.warn("A network error occurred while downloading. Retrying...", stacklevel=1)
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", unreachable)
    monkeypatch.delenv("FRAUDKERAS_OFFLINE")
    with (
        caplog.at_level("WARNING", logger="fraudkeras"),
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        assert load_transactions("auto").source == "sample"
    assert seen == []  # the outcome is one log line, not scikit-learn's retry warnings
    assert "could not download OpenML data id 1597: network is unreachable" in caplog.text
    with pytest.raises(DataError, match="could not download"):
        load_transactions("openml")
    assert not cached_openml_path().exists()


def test_offline_openml_without_cache_is_an_error() -> None:
    with pytest.raises(DataError, match=r"not cached .* FRAUDKERAS_OFFLINE"):
        load_transactions("openml")


def test_auto_prefers_fraudkeras_data(small_parquet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDKERAS_DATA", str(small_parquet))
    assert load_transactions("auto").source == str(small_parquet.resolve())
    monkeypatch.delenv("FRAUDKERAS_DATA")
    assert load_transactions("auto").source == "sample"  # offline, nothing cached


def test_cache_dir_follows_fraudkeras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDKERAS_HOME", str(tmp_path))
    assert data_module.cache_dir() == tmp_path


def test_table_too_large_for_memory_is_refused_before_reading(
    small_parquet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = 3000 * 31 * 8 * data_module.MEMORY_FACTOR  # rows x columns x float64
    monkeypatch.setattr(data_module, "available_memory_bytes", lambda: needed - 1)
    with pytest.raises(DataError, match=rf"^{small_parquet}: too large to train on here"):
        load_transactions(small_parquet)
    monkeypatch.setattr(data_module, "available_memory_bytes", lambda: needed)
    assert load_transactions(small_parquet).n_rows == 3000
    monkeypatch.setattr(data_module, "available_memory_bytes", lambda: None)  # not Linux
    assert load_transactions(small_parquet).n_rows == 3000
