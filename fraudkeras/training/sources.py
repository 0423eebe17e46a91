"""The table a run trains on: held in memory, or streamed from Parquet files."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from fraudkeras.data.parquet_table import is_multi_file, open_table
from fraudkeras.data.splits import Split, split
from fraudkeras.data.streaming import StreamSplit, scan, split_stream
from fraudkeras.data.tables import TableTooLarge, Transactions, load_transactions
from fraudkeras.modeling.features import apply_numpy
from fraudkeras.runs.config import TrainConfig

log = logging.getLogger("fraudkeras")


@dataclass
class LoadedData:
    """The table a run trains on, fingerprinted: in memory, or streamed."""

    source: str
    origin: str
    fingerprint: dict[str, Any]
    transactions: Transactions | None = None
    streamed: StreamSplit | None = None

    def parts(self, config: TrainConfig) -> Split:
        """Training, validation and test (a streamed table's: bounded samples)."""
        if self.streamed is not None:
            return self.streamed.split
        assert self.transactions is not None
        return split(self.transactions, config.split, config.split_seed)


def table_or_source(
    data: str | os.PathLike[str] | Transactions, stream: bool
) -> Transactions | str:
    """The table in memory, or its source when it is to be streamed (a folder or
    glob of Parquet files, ``stream``, or a file too large for memory)."""
    if isinstance(data, Transactions):
        return data
    if stream or is_multi_file(data):
        return str(data)
    try:
        return load_transactions(data)
    except TableTooLarge as error:
        log.info("%s: streaming it instead", error)
        return str(data)


def load(table: Transactions | str, config: TrainConfig) -> LoadedData:
    """Fingerprint the table; a streamed one is also split (two passes), with
    the moments of its transformed training rows for the scaler."""
    if isinstance(table, Transactions):
        fingerprint = table.fingerprint()  # hashes the whole table: once
        return LoadedData(table.source, table.origin, fingerprint, transactions=table)
    found = scan(open_table(table), config.split, config.split_seed)
    streamed = split_stream(found, lambda x: apply_numpy(x, config.features))
    log.info(
        "data: %s streamed, %d rows in %d files, %d frauds",
        table, found.fingerprint["rows"], len({c.path for c in found.table.chunks}),
        found.fingerprint["frauds"],
    )  # fmt: skip
    return LoadedData(found.table.source, str(table), found.fingerprint, streamed=streamed)
