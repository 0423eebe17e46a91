"""PyTorch, data-parallel (``--devices N``): the training step of one process of
a ``torch.distributed`` group (:mod:`fraudkeras.training.torch_workers` starts or
joins it; :func:`torch_steps.train_step` comes here while a group is initialised).

Every process reads the same global batch (``batch_size`` rows, in the order of a
one-process run) and takes its own contiguous slice of it: rows
``[rows * rank // N, rows * (rank + 1) // N)``, so an uneven batch (the last of an
epoch, or a batch size not divisible by N) is split exactly, a slice may even be
empty. Or, in a group that reads its own files (:mod:`fraudkeras.training.shards`),
each process brings its own local batch with a 0/1 mask. Each process
backpropagates the sum of its rows' weighted cross-entropy over the global
batch's rows (with a mask, unknown until the all-reduce: the sum, divided
after it); the gradients, the loss sums and the row counts are
SUM-all-reduced in one buffer. The result is the one-process batch mean's
gradient, up to float32 rounding order, and every process applies the same Adam
update: the weights stay identical across processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import torch
import torch.distributed as dist

from fraudkeras.modeling.train_steps.torch_steps import (
    adam_update,
    forward_logits,
    step_tensors,
    update_loss_tracker,
    weighted_terms,
)

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


def share(rows: int, rank: int, world: int) -> slice:
    """Process ``rank``'s rows of a global batch of ``rows`` rows."""
    return slice(rows * rank // world, rows * (rank + 1) // world)


def train_step(model: FraudMLP, data: Any) -> dict[str, Any]:
    x, y, mask = keras.utils.unpack_x_y_sample_weight(data)
    global_rows = len(y) if mask is None else None  # with a mask: known after the all-reduce
    if mask is None:  # every process reads the global batch: its own slice of it
        mine = share(len(y), dist.get_rank(), dist.get_world_size())
        x = {key: value[mine] for key, value in x.items()} if isinstance(x, dict) else x[mine]
        y = y[mine]
    tensors = step_tensors(model)
    parameters = tensors.parameters
    for parameter in parameters:
        parameter.grad = None
    logits = forward_logits(model, x, tensors)
    terms = weighted_terms(model, y, logits)
    if mask is None:
        rows_here = torch.tensor(float(len(y)), dtype=terms.dtype)
    else:  # its own local batch (shards.py), padded rows masked out
        weight = torch.as_tensor(mask).reshape(-1).to(terms.dtype)
        terms, rows_here = terms * weight, weight.sum()
    loss_sum = torch.sum(terms)
    (loss_sum if global_rows is None else loss_sum / global_rows).backward()
    with torch.no_grad():
        gradients = [
            torch.zeros_like(p) if p.grad is None else p.grad for p in parameters
        ]  # an empty slice may leave no gradient
        parts = [*(g.reshape(-1) for g in gradients), loss_sum.detach().reshape(1)]
        buffer = torch.cat([*parts, rows_here.reshape(1)])
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        rows = buffer[-1]  # the global batch's real rows
        scale = 1.0 if global_rows is not None else 1.0 / rows
        summed, offset = [], 0
        for gradient in gradients:
            summed.append(buffer[offset : offset + gradient.numel()].view_as(gradient) * scale)
            offset += gradient.numel()
        if tensors.adam:
            adam_update(model.optimizer, tensors, summed)
        else:
            model.optimizer.apply(summed, tensors.variables)
        loss = buffer[-2] / rows
        return {"loss": update_loss_tracker(tensors, loss, int(rows.item()))}
