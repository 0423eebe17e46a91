"""JAX on several processes (hosts): one ``keras.distribution.DataParallel`` over
every process's devices.

A process joins a group when Keras's own variables for
``keras.distribution.initialize`` are set: ``KERAS_DISTRIBUTION_JOB_ADDRESSES``
(``host:port`` of each process, the coordinator, process 0, first),
``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``.
:func:`join` then calls ``keras.distribution.initialize()`` (on CPU with gloo
collectives), before any JAX computation; ``train`` calls it first.

Every process loads the same splits and scaler (see ``train``), builds the same
seeded model and feeds its *local* part of each global batch; Keras assembles
the global batch with ``jax.make_array_from_process_local_data`` (process 0's
rows first) and XLA all-reduces the gradients, so every process applies the same
update. Only process 0 writes checkpoints, the run folder and the report; every
process validates on the same global batches, so all stop at the same epoch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import keras
import numpy as np

from fraudkeras._core.errors import ParameterError

log = logging.getLogger("fraudkeras")

#: Keras's variables for ``keras.distribution.initialize``.
GROUP_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


@dataclass(frozen=True)
class Group:
    """This process's place in a JAX multi-process group."""

    process: int
    processes: int
    local_devices: int
    devices: int


def environment_group() -> tuple[int, int] | None:
    """``(process id, processes)`` from Keras's variables under JAX, or None when
    this process is not one of several."""
    if keras.backend.backend() != "jax" or not all(os.environ.get(v) for v in GROUP_VARIABLES):
        return None
    try:
        processes = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
        process = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
    except ValueError as error:
        raise ParameterError(f"KERAS_DISTRIBUTION_* must be integers ({error})") from None
    if processes < 1 or not 0 <= process < processes:
        raise ParameterError(f"process {process} is not in a group of {processes}")
    return (process, processes) if processes > 1 else None


def join() -> Group | None:
    """Join the group the environment describes (once per process); None when
    there is none."""
    if environment_group() is None:
        return None
    import jax

    if not jax.distributed.is_initialized():
        # CPU devices need a collectives implementation across processes (harmless
        # where an accelerator brings its own); asking the backend would start it.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize()
    return current()


def current() -> Group | None:
    """The group this process has joined, if any."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    if not jax.distributed.is_initialized() or jax.process_count() == 1:
        return None
    return Group(jax.process_index(), jax.process_count(), jax.local_device_count(),
                 jax.device_count())  # fmt: skip


def largest(value: int) -> int:
    """The largest ``value`` over the group's processes (an all-gather)."""
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.array([value], np.int64))
    return int(np.max(gathered))
