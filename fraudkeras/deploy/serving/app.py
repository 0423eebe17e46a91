"""The ASGI application: V1 and V2 REST routes, ``/metrics``, JSON errors for
unknown routes, and a lifespan that starts the batch threads, the gRPC service
and the version watcher, and on shutdown drains them in order.

Shutdown: the moment SIGTERM (or Ctrl-C) arrives, readiness turns false (REST
``/v2/health/ready`` 503, gRPC ``ServerReady`` false) while requests are still
accepted and answered for ``--deregister-seconds``, so load balancers stop
sending before the port closes; uvicorn then stops accepting, answers the
requests in flight for up to ``--drain-seconds`` and cuts the rest; the last log
line says how many of each. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras._core.logs import configure_logging
from fraudkeras.deploy.serving import http_limits, protocol_v1, protocol_v2
from fraudkeras.deploy.serving.batching import Batcher
from fraudkeras.deploy.serving.endpoints import error_response
from fraudkeras.deploy.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServingMetrics
from fraudkeras.deploy.serving.repository import ModelRepository, open_repository
from fraudkeras.deploy.serving.settings import Settings
from fraudkeras.deploy.serving.state import ServerState

log = logging.getLogger("fraudkeras")
SETTINGS_VARIABLE = "FRAUDKERAS_SERVE_SETTINGS"  # how worker processes get their settings
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def load_repository(settings: Settings) -> ModelRepository:
    return open_repository(
        settings.name, Path(settings.model), artifact=settings.artifact,
        threshold=settings.threshold, poll_seconds=settings.poll_seconds,
    )  # fmt: skip


def create_app(settings: Settings, repository: ModelRepository) -> Starlette:
    """The server for ``repository`` (already loaded: start-up errors happen before)."""
    metrics = ServingMetrics(settings.name)
    metrics.serving(repository.current)
    repository.listeners.append(metrics.model_event)
    batcher = Batcher(
        max_batch_size=settings.max_batch_size,
        batch_timeout_micros=settings.batch_timeout_micros,
        num_batch_threads=settings.num_batch_threads,
        max_queued_requests=settings.max_queued_requests,
        on_batch=metrics.batch,
    )
    state = ServerState(settings.name, repository, metrics, batcher, settings.inference_timeout)

    async def metrics_route(request: Request) -> Response:
        metrics.queued.set(batcher.queued)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(
            f"{error.detail}: {request.method} {request.url.path}", error.status_code
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        in_flight_at_signal: list[int] = []
        _drain_on_signal(state, in_flight_at_signal, settings.deregister_seconds)
        grpc_server = None
        if settings.grpc_port:
            from fraudkeras.deploy.serving.grpc_v2 import start_grpc

            grpc_server = start_grpc(
                state, settings.host, settings.grpc_port, reuse_port=settings.workers > 1,
                threads=settings.grpc_threads,
                max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
            )  # fmt: skip
        repository.start()
        current = repository.current
        grpc_note = f" and gRPC {settings.host}:{settings.grpc_port}" if grpc_server else ""
        log.info("serving %s version %d (%s, threshold %.4f %s) on http://%s:%d%s",
                 settings.name, current.version, current.source, current.threshold,
                 current.threshold_source, settings.host, settings.port, grpc_note)  # fmt: skip
        try:
            yield
        finally:
            state.begin_drain()
            if grpc_server is not None:
                left = settings.drain_seconds - (time.monotonic() - state.drain_started)
                grpc_server.stop(max(0.5, left)).wait()
            batcher.close()
            repository.stop()
            answered = (in_flight_at_signal or [0])[0] - metrics.cut
            log.info("stopped serving %.1f s after the signal: %d request(s) in flight when "
                     "the port closed were answered, %d cut at --drain-seconds %g",
                     time.monotonic() - state.drain_started, max(0, answered), metrics.cut,
                     settings.drain_seconds)  # fmt: skip

    routes = [
        *protocol_v2.routes(state),
        *protocol_v1.routes(state),
        Route("/metrics", metrics_route),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(protocol_v2.InferRoute, state=state),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )


def _drain_on_signal(state: ServerState, in_flight: list[int], deregister: float) -> None:
    """Turn readiness false the moment a stop signal arrives; ``deregister`` seconds
    later (at once for a second signal), let the handler already installed
    (uvicorn's) stop the server."""
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            first = not state.draining
            state.begin_drain()
            if not first or deregister <= 0:
                _stop(previous, signum, state, in_flight)
                return
            log.info("signal %d: not ready; stopping in %g s (--deregister-seconds)",
                     signum, deregister)  # fmt: skip
            stop = threading.Timer(deregister, _stop, args=(previous, signum, state, in_flight))
            stop.daemon = True
            stop.start()

        signal.signal(sig, handler)


def _stop(stop: Any, signum: int, state: ServerState, in_flight: list[int]) -> None:
    in_flight.append(state.metrics.in_flight)
    stop(signum, None)


def worker_app() -> Starlette:
    """The app of one ``--workers`` process (a uvicorn factory): settings come from
    the environment, and each worker loads its own copy of the model."""
    configure_logging()
    settings = Settings.from_json(os.environ[SETTINGS_VARIABLE])
    http_limits.configure(settings.max_header_bytes, settings.read_timeout)
    return create_app(settings, load_repository(settings))


def settings_env(settings: Settings) -> dict[str, Any]:
    return {SETTINGS_VARIABLE: settings.to_json()}
