"""Metric updates for the backends that keep state in variables (torch, tensorflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudkeras.model import FraudMLP


def update_metrics(model: FraudMLP, loss: Any, labels: Any, logits: Any) -> dict[str, Any]:
    for metric in model.metrics:
        args, kwargs = model.metric_update_args(metric, loss, labels, logits)
        metric.update_state(*args, **kwargs)
    return {metric.name: metric.result() for metric in model.metrics}
