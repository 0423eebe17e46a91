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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import torch

from fraudkeras.backends.base import Backend, ModelFunction, record, share_weights, unpack

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

    @contextlib.contextmanager
    def fit_context(self, model: keras.Model) -> Iterator[None]:
        """``fit`` on :data:`TRAINING_THREADS` intra-op threads, then torch's setting."""
        previous = torch.get_num_threads()
        torch.set_num_threads(TRAINING_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


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
