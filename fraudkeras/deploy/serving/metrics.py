"""Prometheus metrics (prometheus-client): requests by route and status, latency,
batch sizes and the model version served, on ``GET /metrics``.

Each server gets its own registry (several apps in one test process do not clash).
With ``--workers N`` every worker keeps its own counts; a scrape sees the worker
that answered it, as with any multi-process server without a shared store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from fraudkeras.deploy.serving.loading import ServedModel

#: scope keys: the client left before its answer; the status a protocol answered itself;
#: the route's name when a handler serves several routes (else the endpoint's name)
DISCONNECTED, STATUS, ROUTE = "fraudkeras.disconnected", "fraudkeras.status", "fraudkeras_route"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

_CUT_MESSAGE = b'{"error": "server stopped before this request was received (--drain-seconds)"}'
_CUT_START = {
    "type": "http.response.start", "status": 503,
    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                (b"content-length", str(len(_CUT_MESSAGE)).encode())],
}  # fmt: skip
_CUT_BODY = {"type": "http.response.body", "body": _CUT_MESSAGE, "more_body": False}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServingMetrics:
    """The server's metrics; label children are cached (``labels()`` costs ~1 µs)."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.model_name = model_name
        self._requests = Counter(
            "fraudkeras_requests", "Requests answered, by protocol, route and status",
            ["protocol", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self._latency = Histogram(
            "fraudkeras_request_duration_seconds", "Time to answer a request",
            ["protocol", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._batch = Histogram(
            "fraudkeras_batch_transactions", "Transactions per runtime call (merged requests)",
            buckets=_BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._version = Gauge(
            "fraudkeras_model_version", "Model version being served", ["model"],
            registry=self.registry,
        )  # fmt: skip
        self._loads = Counter(
            "fraudkeras_model_loads", "New model versions tried, by outcome",
            ["model", "outcome"], registry=self.registry,
        )  # fmt: skip
        self._disconnects = Counter(
            "fraudkeras_client_disconnects", "Requests whose client left before the answer",
            ["protocol"], registry=self.registry,
        )  # fmt: skip
        self.queued = Gauge(
            "fraudkeras_batch_queue_requests", "Requests waiting for a batch thread",
            registry=self.registry,
        )  # fmt: skip
        ProcessCollector(registry=self.registry)  # RSS, CPU, open files
        self.in_flight = 0  # REST requests being answered (for the drain's last log line)
        self.cut = 0  # REST requests cancelled at the end of the drain
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, protocol: str, route: str, status: int, seconds: float) -> None:
        key = (protocol, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(protocol, route, str(status)),
                self._latency.labels(protocol, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def disconnect(self, protocol: str) -> None:
        self._disconnects.labels(protocol).inc()

    def batch(self, transactions: int) -> None:
        self._batch.observe(transactions)

    def model_event(self, event: str, model: ServedModel | None) -> None:
        """Repository listener: a version loaded (or failed to)."""
        self._loads.labels(self.model_name, event).inc()
        if model is not None:
            self._version.labels(self.model_name).set(model.version)

    def serving(self, model: ServedModel) -> None:
        self._version.labels(self.model_name).set(model.version)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI (no per-request task, unlike Starlette's BaseHTTPMiddleware): times
    every HTTP request and counts it under its endpoint's name and status."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        self.metrics.in_flight += 1

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except asyncio.CancelledError:  # cut at the end of the drain: answered, not an error
            self.metrics.cut += 1
            scope[DISCONNECTED] = True
            if status == 500:  # nothing sent yet (500 is only the default)
                await send(_CUT_START)
                await send(_CUT_BODY)
        finally:
            self.metrics.in_flight -= 1
            if scope.get(DISCONNECTED):  # the client left (or was cut): its own counter
                self.metrics.disconnect("rest")
            else:
                self._observe(scope, scope.get(STATUS, status), start)

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        # a handler serving several routes names its own; else the endpoint's name
        # (the router writes it into this very scope)
        route = str(scope.get(ROUTE) or getattr(scope.get("endpoint"), "__name__", "unmatched"))
        self.metrics.observe("rest", route, status, time.perf_counter() - start)
