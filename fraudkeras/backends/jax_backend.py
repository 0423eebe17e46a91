"""JAX: gradients with ``jax.value_and_grad`` over the model's ``stateless_call``
and ``stateless_compute_loss``, updates with ``optimizer.stateless_apply``; the
metrics' state is threaded through explicitly (a jitted step cannot mutate).

Data-parallel training (``keras.distribution.DataParallel``) runs the same step,
jitted by Keras with the variables' shardings, on global batches: XLA adds the
all-reduces. A global batch is split into equal slices only, so batches come
padded to a multiple of the device count, with a 0/1 mask as their sample
weights (:func:`fraudkeras.backends.base.share_weights` turns it into weights
that make the loss the mean over the real rows).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import jax
import keras

from fraudkeras.backends.base import (
    Backend,
    ModelFunction,
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
        masked = sample_weight is not None and keras.distribution.distribution() is not None
        rows = real_rows(x, sample_weight, masked)
        weights = (
            share_weights(sample_weight, real_rows(x, None, False), rows)
            if masked
            else sample_weight
        )

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
        masked = sample_weight is not None and keras.distribution.distribution() is not None
        rows = real_rows(x, sample_weight, masked)
        weights = (
            share_weights(sample_weight, real_rows(x, None, False), rows)
            if masked
            else sample_weight
        )
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
