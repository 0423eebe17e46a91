"""Loading the transaction table from a file, the OpenML cache or the bundled sample.

Every loader ends in :func:`fraudkeras.data.schema.validate_frame`, so the rest of the
package only ever sees a checked table, and every result says where it came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core.errors import DataError, first_line
from fraudkeras._core.files import atomic_file
from fraudkeras.data.schema import FEATURES, LABEL, validate_frame

log = logging.getLogger("fraudkeras")

OPENML_DATA_ID = 1597
SOURCES = ("auto", "openml", "sample")
#: the file types every table reader and writer accepts
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_CACHE_FILE = f"openml-{OPENML_DATA_ID}-creditcard.parquet"
_DOWNLOAD_TIMEOUT_S = 60
MEMORY_FACTOR = 6  # copies of the table that training holds (see check_fits_in_memory)


@dataclass(frozen=True)
class Transactions:
    """A validated transaction table.

    ``source`` reloads the same table (``"sample"``, ``"openml"`` or an absolute
    path); ``origin`` says in words where it came from.
    """

    frame: pl.DataFrame
    source: str
    origin: str

    @property
    def n_rows(self) -> int:
        return self.frame.height

    @property
    def n_frauds(self) -> int:
        return int(self.frame[LABEL].sum())

    def features(self) -> np.ndarray:
        """Raw features as a float64 array, columns in :data:`FEATURES` order."""
        return self.frame.select(FEATURES).to_numpy().astype(np.float64, copy=False)

    def labels(self) -> np.ndarray:
        return self.frame[LABEL].to_numpy().astype(np.int32)

    def fingerprint(self) -> dict[str, Any]:
        """Rows, frauds and a SHA-256 of the values (not the file), so a CSV and a
        Parquet copy of the same table share a fingerprint."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.features()).tobytes())
        digest.update(np.ascontiguousarray(self.labels().astype(np.int8)).tobytes())
        return {"rows": self.n_rows, "frauds": self.n_frauds, "sha256": digest.hexdigest()}


def cache_dir() -> Path:
    """``$FRAUDKERAS_HOME`` if set, else the platform's user cache folder."""
    home = os.environ.get("FRAUDKERAS_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fraudkeras"))


def cached_openml_path() -> Path:
    return cache_dir() / _CACHE_FILE


def sample_path() -> Path:
    """The bundled 20,492-row sample (all frauds, 20,000 normal rows)."""
    return Path(str(resources.files("fraudkeras") / "sample_data" / "creditcard-sample.parquet"))


def load_transactions(source: str | os.PathLike[str] = "auto") -> Transactions:
    """Load and validate transactions.

    ``source`` is a CSV or Parquet path, ``"openml"`` (OpenML data id 1597,
    downloaded once into :func:`cache_dir`), ``"sample"`` (bundled) or
    ``"auto"``: ``$FRAUDKERAS_DATA`` if set, else the cached full table, else
    the OpenML download, else the bundled sample. Set ``FRAUDKERAS_OFFLINE=1``
    to never touch the network.
    """
    if isinstance(source, str) and source in SOURCES:
        if source == "sample":
            return _read_file(sample_path(), source="sample", origin="bundled sample")
        if source == "openml":
            return _load_openml()
        return _load_auto()
    path = Path(source).expanduser()
    return _read_file(path, source=str(path.resolve()), origin=str(source))


def _load_auto() -> Transactions:
    configured = os.environ.get("FRAUDKERAS_DATA")
    if configured:
        log.info("using $FRAUDKERAS_DATA")
        return load_transactions(configured)
    if cached_openml_path().exists():
        return _load_openml()
    if not _offline():
        try:
            return _load_openml()
        except DataError as error:
            log.warning("%s; falling back to the bundled sample", error)
    return load_transactions("sample")


def _offline() -> bool:
    return os.environ.get("FRAUDKERAS_OFFLINE", "").lower() in {"1", "true", "yes"}


def _load_openml() -> Transactions:
    path = cached_openml_path()
    if not path.exists():
        if _offline():
            raise DataError(f"OpenML data is not cached at {path} and FRAUDKERAS_OFFLINE is set")
        _download_openml(path)
    return _read_file(path, source="openml", origin=f"OpenML data id {OPENML_DATA_ID} (cached)")


def _download_openml(target: Path) -> None:
    """Fetch the table with scikit-learn's ``fetch_openml`` and cache it as Parquet."""
    from sklearn.datasets import fetch_openml

    log.info("downloading OpenML data id %d (about 150 MB, once)", OPENML_DATA_ID)
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            _socket_timeout(_DOWNLOAD_TIMEOUT_S),
            warnings.catch_warnings(),
        ):
            # its "network error ... Retrying" warnings name its own file; the
            # outcome is reported below, once
            warnings.simplefilter("ignore", UserWarning)
            bunch = fetch_openml(
                data_id=OPENML_DATA_ID, data_home=scratch, as_frame=False, parser="liac-arff"
            )
    except Exception as error:  # network, HTTP and parse errors all mean "not available"
        raise DataError(f"could not download OpenML data id {OPENML_DATA_ID}: {error}") from error
    frame = openml_bunch_to_frame(bunch.data, bunch.target, list(bunch.feature_names))
    write_table_atomic(frame, target)


def openml_bunch_to_frame(data: Any, target: Any, feature_names: list[str]) -> pl.DataFrame:
    """Turn ``fetch_openml`` arrays into our table; OpenML ships labels as strings "0"/"1"."""
    columns = {
        name: np.asarray(data[:, i], dtype=np.float64) for i, name in enumerate(feature_names)
    }
    frame = pl.DataFrame(columns).with_columns(
        pl.Series(LABEL, np.asarray(target).astype(str)).cast(pl.Int64, strict=False)
    )
    frame = frame.select([*FEATURES, LABEL]) if set(FEATURES) <= set(frame.columns) else frame
    return validate_frame(frame, source=f"OpenML data id {OPENML_DATA_ID}")


def write_table_atomic(frame: pl.DataFrame, target: Path) -> None:
    """Write ``frame`` (CSV or Parquet, by suffix) next to ``target`` and rename,
    so a crash never leaves half a file."""
    with atomic_file(target) as scratch:
        if target.suffix.lower() == ".csv":
            frame.write_csv(scratch)
        else:
            frame.write_parquet(scratch, compression="zstd")


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def read_table(path: Path) -> pl.DataFrame:
    """Read a CSV or Parquet file with polars, turning every failure into a DataError."""
    suffix = check_table_path(path)
    with read_errors(path, suffix):
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=None)
        return pl.read_parquet(path)


def iter_batches(path: Path, rows: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """Stream a CSV or Parquet file as ``(first_row, validated batch)`` pairs.

    Memory stays bounded by ``rows`` whatever the file's size. Each batch passes
    the schema check (the label is optional), with its row range in any error.
    """
    suffix = check_table_path(path)
    with read_errors(path, suffix):
        scan = (
            pl.scan_csv(path, infer_schema_length=10_000)
            if suffix == ".csv"
            else pl.scan_parquet(path)
        )
        start = 0
        for batch in scan.collect_batches(chunk_size=rows):
            if batch.height == 0:
                continue
            source = f"{path} (rows {start + 1}-{start + batch.height})"
            yield start, validate_frame(batch, source=source, require_label=False)
            start += batch.height
    if start == 0:
        raise DataError(f"{path}: no rows (header only or empty table)")


def check_table_path(path: Path) -> str:
    """The file's suffix, once it is known to be a non-empty CSV or Parquet file."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return suffix


@contextlib.contextmanager
def read_errors(path: Path, suffix: str) -> Iterator[None]:
    """Turn polars' and the OS's reading errors into one DataError line."""
    try:
        yield
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        kind = "CSV" if suffix == ".csv" else "Parquet"
        reason = first_line(error)
        raise DataError(f"{path}: not a readable {kind} file ({reason})") from error


class TableTooLarge(DataError):
    """A table that training could not hold in memory (it can be streamed)."""


def available_memory_bytes() -> int | None:
    """Memory the OS can give this process now (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits_in_memory(path: Path) -> None:
    """Refuse, before reading, a table that training could not hold in memory.

    Training keeps about ``MEMORY_FACTOR`` copies of the table (the frame,
    float64 features, float32 split arrays, each epoch's shuffled copy, the
    backend's own), so a process would be killed mid-way rather than fail
    cleanly. Scoring streams and has no such limit.
    """
    available = available_memory_bytes()
    suffix = check_table_path(path)
    if available is None:
        return
    if suffix == ".csv":
        table_bytes = path.stat().st_size  # text: roughly the size of its float64 values
    else:
        with read_errors(path, suffix):
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        table_bytes = rows * (len(FEATURES) + 1) * 8
    needed = table_bytes * MEMORY_FACTOR
    if needed > available:
        raise TableTooLarge(
            f"{path}: too large to train on here: needs about {needed / 2**20:,.0f} MB, "
            f"{available / 2**20:,.0f} MB of memory available (score streams any size)"
        )


def _read_file(path: Path, *, source: str, origin: str) -> Transactions:
    check_fits_in_memory(path)
    frame = validate_frame(read_table(path), source=str(path))
    log.info("data: %s, %d rows, %d frauds", origin, frame.height, int(frame[LABEL].sum()))
    return Transactions(frame=frame, source=source, origin=origin)
