"""The interface every backend implements (:class:`Backend`), and what the
backend-neutral half of a training step does (:func:`record`)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

#: ``function(model, batch)``: what :meth:`Backend.compiled` compiles
ModelFunction = Callable[[Any, Any], Any]
#: what it returns: a function of the batch alone
Compiled = Callable[[Any], Any]


@dataclass(frozen=True)
class Group:
    """This process's place in a group of processes training together."""

    process: int
    processes: int
    local_devices: int
    devices: int


class Backend(abc.ABC):
    """What one Keras backend does its own way. One instance per backend
    (:func:`fraudkeras.backends.current`).

    A training step is the same on every backend but for how it takes
    gradients: the forward pass is the model's own ``call``, the loss its
    ``compute_loss`` (what ``compile`` named), the update
    ``model.optimizer.apply`` (JAX: ``stateless_apply``) and the metrics
    Keras's metric objects (:func:`record`).
    """

    #: the Keras backend's name
    name: str
    #: the most train steps one compiled call may run (``steps_per_execution``)
    max_steps_per_execution: int = 1 << 30

    # -- the step ------------------------------------------------------------------

    @abc.abstractmethod
    def train_step(self, model: keras.Model, *args: Any) -> Any:
        """``Model.train_step`` with this backend's signature."""

    @abc.abstractmethod
    def test_step(self, model: keras.Model, *args: Any) -> Any:
        """``Model.test_step`` with this backend's signature."""

    @abc.abstractmethod
    def compiled(
        self, model: keras.Model, key: str, function: ModelFunction
    ) -> Callable[[Any], Any]:
        """``function(model, batch)`` as this backend runs it fastest on float32
        batches of any number of rows (compiled once per model and ``key``), reading
        the model's variables when it runs."""

    def fit_context(self, model: keras.Model) -> contextlib.AbstractContextManager[None]:
        """Entered around ``fit`` (threads, cached tensors); nothing by default."""
        return contextlib.nullcontext()

    def steps_per_execution(self, wanted: int) -> int:
        """``wanted``, within what this backend's trainer accepts here."""
        return max(1, min(int(wanted), self.max_steps_per_execution))


def unpack(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of a batch, as Keras's trainers unpack it."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    return x, y, sample_weight


def record(
    model: keras.Model,
    loss: Any,
    rows: Any,
    y: Any,
    logits: Any,
    sample_weight: Any,
    training: bool,
    metrics: Sequence[keras.metrics.Metric] | None = None,
) -> dict[str, Any]:
    """Update the model's metrics after a step and return their results: Keras's
    loss tracker ``loss`` weighted by the step's ``rows``; the compiled metrics
    on the probabilities; when evaluating, also the model's AUC monitors
    (``FraudMLP.monitors``, which training leaves alone: a per-step AUC
    update costs as much as the rest of a step). ``metrics``: the model's metrics (a
    JAX step passes them once, in their variables' order)."""
    metrics = model.metrics if metrics is None else metrics
    probabilities = ops.sigmoid(logits)
    monitors = {id(metric) for metric in model.monitors}
    logs: dict[str, Any] = {}
    for metric in metrics:
        if metric is model.loss_tracker:
            metric.update_state(loss, sample_weight=rows)
        elif id(metric) in monitors:
            if training:
                continue
            metric.update_state(ops.reshape(y, (-1, 1)), probabilities, sample_weight=sample_weight)
        else:  # compiled metrics (Keras's container), or a user's own
            metric.update_state(y, probabilities, sample_weight=sample_weight)
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


def real_rows(x: Any, sample_weight: Any, masked: bool) -> Any:
    """The rows a step learns from: every row of ``x``, or with ``masked`` (a
    padded data-parallel batch, ``sample_weight`` its 0/1 mask) the unmasked ones."""
    if masked:
        return ops.sum(ops.cast(sample_weight, "float32"))
    first = next(value for value in keras.tree.flatten(x) if value is not None)
    return ops.cast(ops.shape(first)[0], "float32")


def share_weights(sample_weight: Any, local_rows: Any, global_rows: Any, scale: float = 1.0) -> Any:
    """Sample weights that make a loss reduced over a device's ``local_rows`` rows
    (Keras's ``sum_over_batch_size``) that device's share of the mean over the
    ``global_rows`` real rows of the global batch: the devices' gradients then add
    up to one device's gradient of the whole batch, for uneven slices and padded
    rows too. ``scale`` undoes a backend's own division by its replica count."""
    factor = ops.divide_no_nan(ops.cast(local_rows, "float32") * scale, global_rows)
    return ops.cast(sample_weight, "float32") * factor
