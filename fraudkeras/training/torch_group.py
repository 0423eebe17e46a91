"""A ``torch.distributed`` group, seen from inside one of its processes: whether
this process is in one (torchrun's ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``), joining it for a run, and keeping its processes' epoch logs
the same. Starting the processes is :mod:`fraudkeras.training.torch_workers`; a
group started outside fraudkeras (torchrun) trains on each process's own files
(:func:`external`, :mod:`fraudkeras.training.shards`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import keras

from fraudkeras._core.devices import check_device_count
from fraudkeras._core.errors import ParameterError
from fraudkeras.training.multihost import Group

if TYPE_CHECKING:
    from fraudkeras.training.train import _Output

log = logging.getLogger("fraudkeras")

GROUP_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: set by :mod:`fraudkeras.training.torch_workers` for the workers it starts on
#: one host: they read the global batches rather than their own files
LAUNCHED_VARIABLE = "FRAUDKERAS_TORCH_WORKER"


# -- checks --------------------------------------------------------------------


def check_devices(devices: Any) -> int:
    """``devices`` as a positive int, and under torch one that fits the group this
    process may be in (JAX and TensorFlow: :mod:`fraudkeras.training.parallel`)."""
    check_device_count(devices)
    world = environment_world()
    if world is not None and devices not in (1, world):
        raise ParameterError(
            f"devices={devices}: this process is one of a group of {world} "
            "(WORLD_SIZE); leave devices at 1 or set it to the group's size"
        )
    return devices


def environment_world() -> int | None:
    """The group size that ``RANK``/``WORLD_SIZE``/``MASTER_*`` (torchrun's
    variables) describe under torch, or None when this process is not in one."""
    if keras.backend.backend() != "torch" or not all(os.environ.get(v) for v in GROUP_VARIABLES):
        return None
    try:
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    except ValueError as error:
        raise ParameterError(f"RANK/WORLD_SIZE must be integers ({error})") from None
    if world < 1 or not 0 <= rank < world:
        raise ParameterError(f"RANK {rank} is not in a group of WORLD_SIZE {world}")
    return world if world > 1 else None


def launches(devices: int) -> bool:
    """Whether ``train(devices=devices)`` starts worker processes (rather than
    training here, alone or as one process of a group): torch only."""
    return keras.backend.backend() == "torch" and devices > 1 and environment_world() is None


def writes_output() -> bool:
    """False in a process of a group that is not rank 0 (it writes nothing)."""
    return environment_world() is None or int(os.environ["RANK"]) == 0


# -- joining a group -------------------------------------------------------------


class SameLogs(keras.callbacks.Callback):
    """At each epoch's end, replace the logs with rank 0's (in place, so every
    later callback, early stopping included, decides on the same numbers)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        import torch
        import torch.distributed as dist

        if not logs:
            return
        keys = sorted(logs)
        values = torch.tensor([float(logs[key]) for key in keys], dtype=torch.float64)
        dist.broadcast(values, src=0)
        logs.update(zip(keys, values.tolist(), strict=True))


@contextlib.contextmanager
def group(output: _Output) -> Iterator[None]:
    """Train as one process of the group in the environment, if there is one:
    join it (``gloo``), make ``output`` write only on rank 0, and leave the group
    at the end. Without such a group: nothing."""
    world = environment_world()
    if world is None:
        yield
        return
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    output.devices, output.primary = world, rank == 0
    output.callbacks = (SameLogs(), *output.callbacks)
    level = log.level
    if rank != 0:
        output.verbose, output.report = 0, False
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)
        if created and dist.is_initialized():
            dist.destroy_process_group()


def external() -> Group | None:
    """The torch group this process has joined when it was started outside
    fraudkeras (``torchrun``, one or several hosts): its processes train on
    their own files (:mod:`fraudkeras.training.shards`). None otherwise."""
    if keras.backend.backend() != "torch" or os.environ.get(LAUNCHED_VARIABLE):
        return None
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return None
    world = dist.get_world_size()
    return Group(dist.get_rank(), world, 1, world)


def largest(value: int) -> int:
    """The largest ``value`` over the group's processes (a MAX all-reduce)."""
    import torch
    import torch.distributed as dist

    values = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return int(values.item())
