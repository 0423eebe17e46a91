"""The interface every backend implements (:class:`Backend`), and what the
backend-neutral half of a training step does (:func:`record`)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from fraudkeras._core.devices import check_device_count
from fraudkeras.data.batches import SeededBatches

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


@dataclass(frozen=True)
class Placement:
    """How a run's batches are placed: on ``devices`` devices, padded to a multiple
    of ``pad_to`` rows (1: not padded), and fed by ``processes`` processes, this
    one ``process``, each its part of every global batch."""

    devices: int = 1
    pad_to: int = 1
    processes: int = 1
    process: int = 0


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

    @abc.abstractmethod
    def input_gradients(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        """d logit / d input of each row of ``x`` (float32), by this backend's autodiff."""

    def fit_context(self, model: keras.Model) -> contextlib.AbstractContextManager[None]:
        """Entered around ``fit`` (threads, cached tensors); nothing by default."""
        return contextlib.nullcontext()

    def steps_per_execution(self, wanted: int) -> int:
        """``wanted``, within what this backend's trainer accepts here."""
        return max(1, min(int(wanted), self.max_steps_per_execution))

    # -- feeding fit -----------------------------------------------------------------

    def feed(self, batches: SeededBatches) -> Any:
        """What ``fit`` reads to get ``batches``: the dataset itself by default."""
        return batches

    # -- devices and process groups --------------------------------------------------

    def join_group(self) -> Group | None:
        """Join the group of processes the environment describes, before the engine
        computes anything (once per process); None when there is none."""
        return None

    def group(self) -> Group | None:
        """The group this process has joined, if any."""
        return None

    def own_files_group(self) -> Group | None:
        """The group whose processes each train on their own files
        (:mod:`fraudkeras.training.shards`), if this process is in one."""
        return self.group()

    def largest(self, value: int) -> int:
        """The largest ``value`` over the group's processes."""
        return value

    def check_devices(self, devices: int) -> None:
        """Raise a ParameterError (saying how to get them) when this process cannot
        train on ``devices`` devices."""
        check_device_count(devices)

    @contextlib.contextmanager
    def data_parallel(self, devices: int) -> Iterator[Placement]:
        """Build, compile and fit inside this context to train on ``devices``
        devices (of the group, when this process is in one)."""
        self.check_devices(devices)
        yield Placement(devices)

    def first_process(self) -> bool:
        """Whether this process is the first of its group (or alone): the one
        that writes files."""
        group = self.group()
        return group is None or group.process == 0

    def launches(self, devices: int) -> bool:
        """Whether training on ``devices`` devices starts worker processes rather
        than training in this one (torch)."""
        return False

    def launch(self, devices: int, module: str, arguments: Sequence[str]) -> None:
        """Run ``python -m module *arguments`` in ``devices`` worker processes that
        form a group, and wait for them."""
        raise NotImplementedError(f"{self.name} trains several devices in one process")

    @contextlib.contextmanager
    def session(self) -> Iterator[Group | None]:
        """A training run inside the group this process is in: joined for the run
        where the backend needs it (torch), else :meth:`group`."""
        yield self.group()

    def epoch_callbacks(self) -> list[keras.callbacks.Callback]:
        """Callbacks that keep a group's processes deciding alike at each epoch."""
        return []


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
) -> dict[str, Any]:
    """Update the model's metrics after a step and return their results: Keras's
    loss tracker ``loss`` weighted by the step's ``rows``; the compiled metrics
    on the probabilities; when evaluating, also the model's AUC monitors
    (``FraudMLP.monitors``, which training leaves alone: a per-step AUC
    update costs as much as the rest of a step)."""
    probabilities = ops.sigmoid(logits)
    monitors = {id(metric) for metric in model.monitors}
    logs: dict[str, Any] = {}
    for metric in model.metrics:
        if metric.name == "loss":  # Keras's loss tracker (FraudMLP.loss_tracker)
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
