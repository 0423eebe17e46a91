"""Each process of a multi-process group training on its own Parquet files, so
that no host reads the whole table's training rows: JAX's group, TensorFlow's
``TF_CONFIG`` workers and a torch group started outside fraudkeras
(``torchrun``), as :meth:`fraudkeras.backends.Backend.own_files_group` says.
Workers that ``--devices N`` starts on one host read the global batches instead.

File ``i`` of the table's sorted files goes to process ``i % processes``; each
process trains on local batches of ``batch_size / processes`` of its own rows
(:class:`~fraudkeras.data.batches.EpochBatches` with ``own``), the group's
global batch being the processes' local batches together, for as many steps as
the longest shard needs (shorter shards add masked rows).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.backends import Group, current
from fraudkeras.data.streaming import StreamSplit

log = logging.getLogger("fraudkeras")


@dataclass(frozen=True)
class Shard:
    """This process's own training rows (raw features, labels), the group's
    steps per epoch, and the process's place in the group."""

    x: np.ndarray
    y: np.ndarray
    steps: int
    process: int
    processes: int


def shard_files(paths: list[Any], group: Group) -> set[Any]:
    """The files this process trains on: file ``i`` (sorted) goes to process
    ``i % processes``."""
    return {path for i, path in enumerate(paths) if i % group.processes == group.process}


def own_shard(streamed: StreamSplit | None, batch_size: int) -> Shard | None:
    """This process's shard when it is one of a group that reads its own files
    and the streamed table has at least as many files as processes; None
    otherwise (then every process reads the global batches and feeds its slice
    of each)."""
    backend = current()
    group = backend.own_files_group()
    if group is None or streamed is None or len(streamed.files()) < group.processes:
        return None
    local = batch_size // group.processes
    if batch_size % group.processes or local % group.local_devices:
        raise ParameterError(
            f"batch_size {batch_size}: with each of {group.processes} processes "
            f"reading its own files, it must be a multiple of {group.devices} (devices)"
        )
    own = shard_files(streamed.files(), group)
    xs, ys = [], []
    for _, x, y in streamed.train_chunks(own):
        xs.append(x)
        ys.append(y)
    rows = sum(len(y) for y in ys)
    steps = backend.largest(math.ceil(rows / local))
    if -backend.largest(-rows) == 0:  # every process learns it, so none waits in a collective
        raise DataError(
            f"{streamed.scan.table.source}: with {group.processes} processes each training "
            "on its own files, one of them gets no training rows (a time split puts whole "
            "files in validation and test); use fewer processes or a stratified split"
        )
    x_own, y_own = np.concatenate(xs), np.concatenate(ys)
    log.info(
        "process %d of %d: %d training rows from %d of %d files, %d steps an epoch",
        group.process, group.processes, len(y_own), len(own), len(streamed.files()), steps,
    )  # fmt: skip
    return Shard(x_own, y_own, steps, group.process, group.processes)
