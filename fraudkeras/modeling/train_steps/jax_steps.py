"""JAX: stateless steps. Gradients with ``jax.value_and_grad`` over
``stateless_call``, updates with ``optimizer.stateless_apply``; metric state is
threaded through explicitly (``update_state`` cannot mutate inside a jit).

Data-parallel training (``fraudkeras train --devices N``,
:mod:`fraudkeras.training.parallel`) runs the same steps, jitted by Keras with the
variables' shardings, on global batches split across the devices; XLA adds the
all-reduces. A batch is split into equal slices only, so every batch comes
padded to a multiple of N rows with a mask, the ``sample_weight`` slot of the
data (1: a real row, 0: padding): the loss is then the masked rows' sum over the
real row count, the same mean as one device computes.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import keras
from keras import ops

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


def _loss_and_logits(
    model: FraudMLP,
    trainable_variables: Any,
    non_trainable_variables: Any,
    x: Any,
    y: Any,
    mask: Any,
    training: bool,
) -> tuple[Any, tuple[Any, Any, Any]]:
    logits, non_trainable_variables = model.stateless_call(
        trainable_variables, non_trainable_variables, x, training=training, return_logits=True
    )
    if mask is None:
        return model.weighted_loss(y, logits), (logits, None, non_trainable_variables)
    mask = ops.reshape(ops.cast(mask, logits.dtype), (-1,))
    rows = model.row_losses(y, logits) * mask  # padding rows (finite copies) count 0
    return ops.sum(rows) / ops.sum(mask), (logits, rows, non_trainable_variables)


#: model -> {key: jitted function of (variable values, batch)}
_COMPILED: weakref.WeakKeyDictionary[FraudMLP, dict[str, Any]] = weakref.WeakKeyDictionary()


def compiled(
    model: FraudMLP, key: str, function: Callable[[FraudMLP, Any], Any]
) -> Callable[[Any], Any]:
    """``function(model, batch)`` as one jitted function of the model's variables
    and the batch, compiled once per model, ``key`` and batch shape.

    Run eagerly, JAX compiles every op for every new shape: ~5 s for the ~25 ops
    of ``FraudMLP.prepare`` on the full table (busy machine), against ~1 s jitted.
    The variables are arguments, not captured constants, so later weights are
    never stale; the model is held weakly, so the cache does not keep it alive."""
    functions = _COMPILED.setdefault(model, {})
    if key not in functions:
        variables, owner = list(model.variables), weakref.ref(model)

        @jax.jit
        def run(values: list[Any], batch: Any) -> Any:
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return function(owner(), batch)  # type: ignore[arg-type]

        functions[key] = (variables, run)
    variables, run = functions[key]
    return lambda batch: run([variable.value for variable in variables], batch)


def fit_context(model: FraudMLP) -> contextlib.AbstractContextManager[None]:
    """``fit`` runs as Keras sets it up (threads: the framework's default)."""
    return contextlib.nullcontext()


def train_step(model: FraudMLP, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, mask = keras.utils.unpack_x_y_sample_weight(data)
    grad_fn = jax.value_and_grad(_loss_and_logits, argnums=1, has_aux=True)
    (loss, (logits, rows, non_trainable)), gradients = grad_fn(
        model, trainable, non_trainable, x, y, mask, True
    )
    trainable, optimizer_variables = model.optimizer.stateless_apply(
        optimizer_variables, gradients, trainable
    )
    logs, metrics_variables = update_metrics(
        model, model.train_metrics, metrics_variables, loss, y, logits, rows, mask
    )
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def test_step(model: FraudMLP, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    trainable, non_trainable, metrics_variables = state
    x, y, mask = keras.utils.unpack_x_y_sample_weight(data)
    loss, (logits, rows, non_trainable) = _loss_and_logits(
        model, trainable, non_trainable, x, y, mask, False
    )
    logs, metrics_variables = update_metrics(
        model, model.metrics, metrics_variables, loss, y, logits, rows, mask
    )
    return logs, (trainable, non_trainable, metrics_variables)


def update_metrics(
    model: FraudMLP,
    metrics: Sequence[keras.metrics.Metric],
    metrics_variables: list[Any],
    loss: Any,
    labels: Any,
    logits: Any,
    rows: Any = None,
    mask: Any = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Update ``metrics`` (a subset of ``model.metrics``) statelessly.

    Walks ``model.metrics`` in order, each owning the next ``len(variables)``
    entries of ``metrics_variables`` (the order of ``model.metrics_variables``);
    metrics are matched by identity, and those not in ``metrics`` pass through.
    ``rows`` and ``mask``: a padded data-parallel batch's (masked) row losses and
    mask (``FraudMLP.metric_update_args``).
    """
    chosen = {id(metric) for metric in metrics}
    logs: dict[str, Any] = {}
    updated: list[Any] = []
    for metric in model.metrics:
        own = metrics_variables[len(updated) : len(updated) + len(metric.variables)]
        if id(metric) in chosen:
            args, kwargs = model.metric_update_args(metric, loss, labels, logits, rows, mask)
            own = metric.stateless_update_state(own, *args, **kwargs)
            logs[metric.name] = metric.stateless_result(own)
        updated.extend(own)
    return logs, updated
