"""What every front end (REST, gRPC) shares, free of any web framework: the
served model, readiness, the batching queue and the decision itself."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fraudkeras.data.schema import FEATURES
from fraudkeras.deploy.serving.batching import Batcher
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.metrics import ServingMetrics
from fraudkeras.deploy.serving.repository import ModelRepository
from fraudkeras.metrics.decisions import Decision

#: the column of the features that holds each transaction's Amount
AMOUNT = FEATURES.index("Amount")


class InferenceTimeout(RequestError):
    """A request not answered within ``--inference-timeout`` (504 / DEADLINE_EXCEEDED)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"inference took longer than {seconds:g} s (--inference-timeout)", 504)


@dataclass
class ServerState:
    """Shared by every endpoint: which model, under what name, its queue and metrics."""

    name: str
    repository: ModelRepository
    metrics: ServingMetrics
    batcher: Batcher
    inference_timeout: float
    draining: bool = False
    drain_started: float = field(default=0.0)

    @property
    def ready(self) -> bool:
        """Ready to take requests: not shutting down, and the model passes its check."""
        return not self.draining and self.repository.healthy

    def begin_drain(self) -> None:
        """From now on readiness is false (REST 503, gRPC not serving)."""
        if not self.draining:
            self.draining, self.drain_started = True, time.monotonic()

    def model(self, name: str, version: str | None = None) -> ServedModel:
        """The served model if ``name`` (and ``version``) name it, else a 404."""
        if name != self.name:
            raise RequestError(f"model {name!r} not found; this server serves {self.name!r}", 404)
        served = self.repository.current  # read once: a swap after this does not affect us
        if version is not None and version != str(served.version):
            raise RequestError(
                f"model {name!r} version {version!r} is not loaded; serving version "
                f"{served.version}",
                404,
            )
        return served

    def submit(self, model: ServedModel, features: np.ndarray) -> Future[np.ndarray]:
        """Queue ``features`` for a batched runtime call (503 when the queue is full)."""
        return self.batcher.submit(model, features)


class Decided(NamedTuple):
    """What every protocol answers for a batch of transactions, one value a row
    (a tuple: cheap to build on every request)."""

    probabilities: np.ndarray  #: float32
    flags: np.ndarray  #: bool
    expected_loss: np.ndarray  #: float32, ``p x (Amount + chargeback fee)``
    threshold: float  #: the request's threshold, or the model's


def decide(
    model: ServedModel, features: np.ndarray, probabilities: np.ndarray, threshold: float | None
) -> Decided:
    """Flags by the model's decision (its expected-cost rule needs each row's
    Amount), or ``p >= threshold`` when the request gives one; and each row's
    expected loss, priced by the model's decision whatever flagged it."""
    amounts = features[:, AMOUNT]
    rule = model.decision if threshold is None else Decision("threshold", threshold)
    return Decided(
        probabilities,
        rule.flags(probabilities, amounts),
        model.decision.expected_loss(probabilities, amounts).astype(np.float32),
        model.threshold if threshold is None else threshold,
    )
