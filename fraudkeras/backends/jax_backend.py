"""JAX: gradients with ``jax.value_and_grad`` over the model's ``stateless_call``
and ``stateless_compute_loss``, updates with ``optimizer.stateless_apply``; the
metrics' state is threaded through explicitly (a jitted step cannot mutate).

Several devices: ``keras.distribution.DataParallel`` (variables replicated,
batches sharded on their first axis) runs the same step,
jitted by Keras with the variables' shardings, on global batches: XLA adds the
all-reduces. A global batch is split into equal slices only, so batches come
padded to a multiple of the device count, with a 0/1 mask as their sample
weights (:func:`fraudkeras.backends.base.share_weights` turns it into weights
that make the loss the mean over the real rows).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import jax
import keras
import numpy as np

from fraudkeras._core.devices import XLA_DEVICE_COUNT_FLAG
from fraudkeras._core.errors import ParameterError
from fraudkeras.backends.base import (
    Backend,
    Group,
    ModelFunction,
    Placement,
    real_rows,
    record,
    share_weights,
    unpack,
)


class JaxBackend(Backend):
    name = "jax"

    def __init__(self) -> None:
        #: model -> {key: (variables, jitted function of (their values, batch))}
        self._compiled: weakref.WeakKeyDictionary[keras.Model, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def train_step(self, model: keras.Model, *args: Any) -> Any:
        state, data = args
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = unpack(data)
        rows, weights = _row_weights(x, sample_weight)

        def loss_of(trainable: Any, non_trainable: Any) -> tuple[Any, tuple[Any, Any]]:
            logits, non_trainable = model.stateless_call(
                trainable, non_trainable, x, training=True, return_logits=True
            )
            loss, (_, non_trainable, _) = model.stateless_compute_loss(
                trainable, non_trainable, metrics_variables,
                x=x, y=y, y_pred=logits, sample_weight=weights, training=True,
            )  # fmt: skip
            return loss, (logits, non_trainable)

        gradient = jax.value_and_grad(loss_of, has_aux=True)
        (loss, (logits, non_trainable)), gradients = gradient(trainable, non_trainable)
        trainable, optimizer_variables = model.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        logs, metrics_variables = _record(
            model, metrics_variables, loss, rows, y, logits, sample_weight, training=True
        )
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, model: keras.Model, *args: Any) -> Any:
        state, data = args
        trainable, non_trainable, metrics_variables = state
        x, y, sample_weight = unpack(data)
        rows, weights = _row_weights(x, sample_weight)
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, x, training=False, return_logits=True
        )
        loss, _ = model.stateless_compute_loss(
            trainable, non_trainable, metrics_variables,
            x=x, y=y, y_pred=logits, sample_weight=weights, training=False,
        )  # fmt: skip
        logs, metrics_variables = _record(
            model, metrics_variables, loss, rows, y, logits, sample_weight, training=False
        )
        return logs, (trainable, non_trainable, metrics_variables)

    def compiled(
        self, model: keras.Model, key: str, function: ModelFunction
    ) -> Callable[[Any], Any]:
        """Jitted once per model, ``key`` and batch shape. Run eagerly, JAX compiles
        every op for every new shape: ~5 s for the ~25 ops of ``FraudMLP.prepare``
        on the full table, against ~1 s jitted. The variables are arguments, not
        captured constants, so later weights are never stale; the model is held
        weakly, so the cache does not keep it alive."""
        functions = self._compiled.setdefault(model, {})
        if key not in functions:
            variables, owner = list(model.variables), weakref.ref(model)

            @jax.jit
            def run(values: list[Any], batch: Any) -> Any:
                mapping = list(zip(variables, values, strict=True))
                with keras.StatelessScope(state_mapping=mapping):
                    return function(owner(), batch)

            functions[key] = (variables, run)
        variables, run = functions[key]
        return lambda batch: run([variable.value for variable in variables], batch)

    def input_gradients(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        def logit(row: Any) -> Any:
            return model(row[None, :], return_logits=True)[0, 0]

        # jit: traced once per call and shape; unjitted, JAX dispatches op by op (30x slower)
        return np.asarray(jax.jit(jax.vmap(jax.grad(logit)))(jax.numpy.asarray(x)))

    # -- devices and process groups --------------------------------------------------

    def join_group(self) -> Group | None:
        if environment_group() is None:
            return None
        if not jax.distributed.is_initialized():
            # CPU devices need a collectives implementation across processes (harmless
            # where an accelerator brings its own); asking the backend would start it.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            keras.distribution.initialize()
        return self.group()

    def group(self) -> Group | None:
        if not jax.distributed.is_initialized() or jax.process_count() == 1:
            return None
        return Group(jax.process_index(), jax.process_count(), jax.local_device_count(),
                     jax.device_count())  # fmt: skip

    def largest(self, value: int) -> int:
        if self.group() is None:
            return value
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(np.array([value], np.int64))
        return int(np.max(gathered))

    def check_devices(self, devices: int) -> None:
        super().check_devices(devices)
        available = len(keras.distribution.list_devices())
        if devices > 1 and self.group() is None and available < devices:
            raise ParameterError(
                f"devices {devices}: JAX has {available} device(s); on CPU, set "
                f"XLA_FLAGS={XLA_DEVICE_COUNT_FLAG}={devices} before jax is imported "
                "(fraudkeras train --devices does it itself, unless XLA_FLAGS names a count)"
            )

    @contextlib.contextmanager
    def data_parallel(self, devices: int) -> Iterator[Placement]:
        group = self.group()
        if group is not None:  # every process's devices, whatever ``devices`` says
            with _distributed(keras.distribution.list_devices(), sharded=True):
                yield Placement(group.devices, group.devices, group.processes, group.process)
            return
        self.check_devices(devices)
        if devices == 1:
            yield Placement()
            return
        with _distributed(keras.distribution.list_devices()[:devices]):
            yield Placement(devices, pad_to=devices)


#: Keras's variables for ``keras.distribution.initialize``
GROUP_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def environment_group() -> tuple[int, int] | None:
    """``(process id, processes)`` from Keras's variables, or None when this
    process is not one of several."""
    if not all(os.environ.get(variable) for variable in GROUP_VARIABLES):
        return None
    try:
        processes = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
        process = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
    except ValueError as error:
        raise ParameterError(f"KERAS_DISTRIBUTION_* must be integers ({error})") from None
    if processes < 1 or not 0 <= process < processes:
        raise ParameterError(f"process {process} is not in a group of {processes}")
    return (process, processes) if processes > 1 else None


@contextlib.contextmanager
def _distributed(devices: list[Any], sharded: bool = False) -> Iterator[None]:
    """A ``DataParallel`` over ``devices``; ``sharded``: each process feeds its own
    part of every batch already (Keras would otherwise insist on a
    ``tf.data.Dataset`` to shard itself)."""
    previous = keras.distribution.distribution()
    parallel = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=not sharded)
    keras.distribution.set_distribution(parallel)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def _row_weights(x: Any, sample_weight: Any) -> tuple[Any, Any]:
    """The step's real rows and sample weights: under data parallelism the batch
    is padded and ``sample_weight`` its mask, weighed so that the loss is the mean
    over the real rows; otherwise the weights as given."""
    masked = sample_weight is not None and keras.distribution.distribution() is not None
    rows = real_rows(x, sample_weight, masked)
    if not masked:
        return rows, sample_weight
    return rows, share_weights(sample_weight, real_rows(x, None, False), rows)


def _record(
    model: keras.Model,
    metrics_variables: list[Any],
    loss: Any,
    rows: Any,
    y: Any,
    logits: Any,
    sample_weight: Any,
    training: bool,
) -> tuple[dict[str, Any], list[Any]]:
    """:func:`~fraudkeras.backends.base.record` on the step's metric state: the
    metrics update as usual inside a ``StatelessScope``, which collects their
    new values."""
    mapping = list(zip(model.metrics_variables, metrics_variables, strict=True))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = record(model, loss, rows, y, logits, sample_weight, training)
    updated = []
    for variable, old in mapping:
        new = scope.get_current_value(variable)
        updated.append(old if new is None else new)
    return logs, updated


BACKEND = JaxBackend()
