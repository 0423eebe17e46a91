"""Metric updates for the backends that keep state in variables (torch, tensorflow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from fraudkeras.modeling.model import FraudMLP


def update_metrics(
    model: FraudMLP,
    metrics: Sequence[keras.metrics.Metric],
    loss: Any,
    labels: Any,
    logits: Any,
    rows: Any = None,
    mask: Any = None,
) -> dict[str, Any]:
    """Update ``metrics`` (a subset of ``model.metrics``) and return their results
    (``rows``, ``mask``: a data-parallel step's row losses and 0/1 row weights,
    see ``FraudMLP.metric_update_args``)."""
    for metric in metrics:
        args, kwargs = model.metric_update_args(metric, loss, labels, logits, rows, mask)
        metric.update_state(*args, **kwargs)
    return {metric.name: metric.result() for metric in metrics}
