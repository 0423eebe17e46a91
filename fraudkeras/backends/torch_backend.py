"""PyTorch: gradients with ``loss.backward()`` into each variable's ``.grad``,
updates with ``model.optimizer.apply`` under ``torch.no_grad()``, stateful
metrics: Keras's own torch ``train_step``, with the model's logits handed to
its ``compute_loss`` and, in a ``torch.distributed`` group, an all-reduce of
the gradients.

In a group (``--devices N`` workers, or ``torchrun``), every process either
reads the global batch and takes its own contiguous slice of it (rows
``[n * rank // N, n * (rank + 1) // N)``: an uneven batch is split exactly, a
slice may even be empty), or brings its own local batch with a 0/1 mask (a
group reading its own files). Each process's loss is its rows' share of the
global batch's mean (:func:`fraudkeras.backends.base.share_weights`); the
gradients and the loss shares are SUM-all-reduced in one buffer, so every
process applies the one-process update and the weights stay identical.

``keras.distribution`` does not support torch, so ``--devices N`` starts N
processes with PyTorch's own launcher (``torch.distributed.launcher``, what
``torchrun`` runs; CPU, ``gloo``). A process that finds ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set (a launched worker, or
one ``torchrun`` started on one or several hosts) joins that group for the run
(:meth:`TorchBackend.session`); rank 0's epoch logs are broadcast before every
early-stopping decision (:class:`SameLogs`), so all stop at the same epoch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import torch

from fraudkeras._core.backend import quiet_environment
from fraudkeras._core.devices import check_device_count
from fraudkeras._core.errors import ParameterError, TrainingError
from fraudkeras._core.subprocesses import ERRORS_VARIABLE, exit_reason, reported_error
from fraudkeras.backends.base import (
    Backend,
    Group,
    ModelFunction,
    Placement,
    record,
    share_weights,
    unpack,
)
from fraudkeras.data.batches import SeededBatches

_DIST = torch.distributed if torch.distributed.is_available() else None

#: Intra-op threads while training. The layers are at most 256 x 64: an op is over
#: before a second thread helps, and on a busy 2-core machine torch's OpenMP
#: threads wait on each other (measured: 1.0 ms/step on one thread, 3-6 ms on two,
#: at load 7; the notebook's loop alike). Inference keeps torch's setting.
TRAINING_THREADS = 1


def share(rows: int, rank: int, world: int) -> slice:
    """Process ``rank``'s rows of a global batch of ``rows`` rows."""
    return slice(rows * rank // world, rows * (rank + 1) // world)


def in_group() -> bool:
    return _DIST is not None and _DIST.is_initialized() and _DIST.get_world_size() > 1


class TorchBackend(Backend):
    name = "torch"
    #: Keras's torch trainer runs one step per call (it refuses more)
    max_steps_per_execution = 1

    def train_step(self, model: keras.Model, *args: Any) -> Any:
        (data,) = args
        x, y, sample_weight = unpack(data)
        grouped = in_group()
        if grouped:
            x, y, sample_weight, rows = _local_batch(x, y, sample_weight)
        else:
            rows = torch.tensor(float(len(y)))
        model.zero_grad()
        logits = model(x, training=True, return_logits=True)
        if len(y):
            loss = model.compute_loss(x, y, logits, sample_weight, training=True)
        else:  # an empty slice of a global batch: no loss, zero gradients
            loss = torch.sum(logits) * 0.0
        loss.backward()
        variables = model.trainable_variables
        gradients = [
            torch.zeros_like(v.value) if v.value.grad is None else v.value.grad for v in variables
        ]
        if grouped:
            gradients, loss = _summed(gradients, loss.detach())
        with torch.no_grad():
            model.optimizer.apply(gradients, variables)
            return record(model, loss.detach(), rows, y, logits.detach(), sample_weight, True)

    def test_step(self, model: keras.Model, *args: Any) -> Any:
        (data,) = args
        x, y, sample_weight = unpack(data)
        with torch.no_grad():
            logits = model(x, training=False, return_logits=True)
            loss = model.compute_loss(x, y, logits, sample_weight, training=False)
            return record(model, loss, len(y), y, logits, sample_weight, False)

    def compiled(
        self, model: keras.Model, key: str, function: ModelFunction
    ) -> Callable[[Any], Any]:
        """Eager: torch runs each op as it comes, with nothing to compile."""
        return lambda batch: function(model, batch)

    def input_gradients(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        with torch.enable_grad():
            logits = model(inputs, return_logits=True)
            (gradient,) = torch.autograd.grad(logits.sum(), inputs)
        return gradient.detach().cpu().numpy()

    @contextlib.contextmanager
    def fit_context(self, model: keras.Model) -> Iterator[None]:
        """``fit`` on :data:`TRAINING_THREADS` intra-op threads, then torch's setting."""
        previous = torch.get_num_threads()
        torch.set_num_threads(TRAINING_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    # -- feeding fit -----------------------------------------------------------------

    def feed(self, batches: SeededBatches) -> Any:
        """``batches`` as a torch ``DataLoader`` that hands them out as they are,
        as tensors sharing the arrays' memory. For a ``PyDataset`` Keras builds a
        ``DataLoader`` whose every batch passes a fetcher, a collate function and
        a profiler ``record_function`` (~0.2 ms a batch, a sixth of a step)."""
        from torch.utils.data import DataLoader, IterableDataset

        class Batches(IterableDataset):
            def __iter__(self) -> Iterator[Any]:
                return (_tensors(batches[i]) for i in range(len(batches)))

            def __len__(self) -> int:
                return len(batches)

        class Loader(DataLoader):
            def __iter__(self) -> Any:  # the dataset's own iterator
                return iter(self.dataset)

        return Loader(Batches(), batch_size=None)

    # -- devices and process groups --------------------------------------------------

    def group(self) -> Group | None:
        if not in_group():
            return None
        assert _DIST is not None
        world = _DIST.get_world_size()
        return Group(_DIST.get_rank(), world, 1, world)

    def own_files_group(self) -> Group | None:
        """A group started outside fraudkeras (``torchrun``); the workers that
        ``--devices N`` starts read the global batches instead."""
        return None if os.environ.get(LAUNCHED_VARIABLE) else self.group()

    def largest(self, value: int) -> int:
        if not in_group():
            return value
        assert _DIST is not None
        values = torch.tensor([value], dtype=torch.int64)
        _DIST.all_reduce(values, op=_DIST.ReduceOp.MAX)
        return int(values.item())

    def check_devices(self, devices: int) -> None:
        check_device_count(devices)
        world = environment_world()
        if world is not None and devices not in (1, world):
            raise ParameterError(
                f"devices={devices}: this process is one of a group of {world} "
                "(WORLD_SIZE); leave devices at 1 or set it to the group's size"
            )

    @contextlib.contextmanager
    def data_parallel(self, devices: int) -> Iterator[Placement]:
        self.check_devices(devices)
        group = self.group()  # each process slices the batches in the step
        yield Placement(1 if group is None else group.devices)

    def launches(self, devices: int) -> bool:
        return devices > 1 and environment_world() is None

    def first_process(self) -> bool:
        return environment_world() is None or int(os.environ["RANK"]) == 0

    def launch(self, devices: int, module: str, arguments: Sequence[str]) -> None:
        """``python -m module *arguments`` on ``devices`` local workers, started and
        watched by ``torch.distributed.launcher`` (rendezvous on loopback, no
        restarts). A failed worker ends the others; its own fraudkeras error is
        raised here (:mod:`fraudkeras._core.subprocesses`), or else what ended it."""
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=devices, run_id=uuid.uuid4().hex,
            rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
            monitor_interval=0.1,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="fraudkeras-workers-") as errors:
            variables = {**quiet_environment(), LAUNCHED_VARIABLE: "1", ERRORS_VARIABLE: errors}
            try:
                with _environment(variables):
                    elastic_launch(config, sys.executable)("-m", module, *arguments)
            except ChildFailedError as failure:
                rank, first = failure.get_first_failure()
                raise reported_error(errors) or TrainingError(
                    f"training worker {rank} of {devices} failed: {exit_reason(first.exitcode)}"
                ) from None

    @contextlib.contextmanager
    def session(self) -> Iterator[Group | None]:
        """Join the group in the environment for the run (``gloo``), and leave it
        at the end; without one, nothing."""
        world = environment_world()
        if world is None or _DIST is None:
            yield None
            return
        created = not _DIST.is_initialized()
        if created:
            _DIST.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=world)
        try:
            yield self.group()
        finally:
            if created and _DIST.is_initialized():
                _DIST.destroy_process_group()

    def epoch_callbacks(self) -> list[keras.callbacks.Callback]:
        return [SameLogs()] if in_group() else []


#: torchrun's variables for a process of a group
GROUP_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: set for the workers :meth:`TorchBackend.launch` starts on one host: they read
#: the global batches rather than their own files
LAUNCHED_VARIABLE = "FRAUDKERAS_TORCH_WORKER"


def environment_world() -> int | None:
    """The group size that torchrun's variables describe, or None when this
    process is not in a group of several."""
    if not all(os.environ.get(variable) for variable in GROUP_VARIABLES):
        return None
    try:
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    except ValueError as error:
        raise ParameterError(f"RANK/WORLD_SIZE must be integers ({error})") from None
    if world < 1 or not 0 <= rank < world:
        raise ParameterError(f"RANK {rank} is not in a group of WORLD_SIZE {world}")
    return world if world > 1 else None


class SameLogs(keras.callbacks.Callback):
    """At each epoch's end, replace the logs with rank 0's (in place, so every
    later callback, early stopping included, decides on the same numbers)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not logs or _DIST is None:
            return
        keys = sorted(logs)
        values = torch.tensor([float(logs[key]) for key in keys], dtype=torch.float64)
        _DIST.broadcast(values, src=0)
        logs.update(zip(keys, values.tolist(), strict=True))


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` set in this process's environment (which the workers inherit)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _tensors(batch: tuple[Any, ...]) -> tuple[Any, ...]:
    def tensor(array: Any) -> Any:
        if isinstance(array, dict):
            return {key: tensor(value) for key, value in array.items()}
        return torch.from_numpy(np.ascontiguousarray(array))

    return tuple(tensor(part) for part in batch)


def _local_batch(x: Any, y: Any, mask: Any) -> tuple[Any, Any, Any, Any]:
    """This process's rows of the step, their share weights and the global
    batch's real row count."""
    assert _DIST is not None
    if mask is None:  # every process reads the global batch: its own slice of it
        total = len(y)
        mine = share(total, _DIST.get_rank(), _DIST.get_world_size())
        x = {key: value[mine] for key, value in x.items()} if isinstance(x, dict) else x[mine]
        y = y[mine]
        local = torch.ones(len(y))
        return x, y, share_weights(local, len(y), float(total)), torch.tensor(float(total))
    weight = torch.as_tensor(mask).reshape(-1).to(torch.float32)
    rows = weight.sum()
    _DIST.all_reduce(rows, op=_DIST.ReduceOp.SUM)  # the global batch's real rows
    return x, y, share_weights(weight, len(weight), rows), rows


def _summed(gradients: list[torch.Tensor], loss: torch.Tensor) -> tuple[list[Any], Any]:
    """The gradients and loss shares summed over the group, in one all-reduce."""
    assert _DIST is not None
    buffer = torch.cat([*(g.reshape(-1) for g in gradients), loss.reshape(1)])
    _DIST.all_reduce(buffer, op=_DIST.ReduceOp.SUM)
    summed, offset = [], 0
    for gradient in gradients:
        summed.append(buffer[offset : offset + gradient.numel()].view_as(gradient))
        offset += gradient.numel()
    return summed, buffer[-1]


BACKEND = TorchBackend()
