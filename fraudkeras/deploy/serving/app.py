"""The ASGI application: V1 and V2 REST routes, ``/metrics``, JSON errors for
unknown routes, and a lifespan that starts the gRPC service and the version
watcher and stops them (after the REST requests in flight) on shutdown."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras.deploy.serving import protocol_v1, protocol_v2
from fraudkeras.deploy.serving.endpoints import ServerState, error_response
from fraudkeras.deploy.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServingMetrics
from fraudkeras.deploy.serving.repository import POLL_SECONDS, ModelRepository, open_repository

log = logging.getLogger("fraudkeras")
SETTINGS_VARIABLE = "FRAUDKERAS_SERVE_SETTINGS"  # how worker processes get their settings
GRPC_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    """Everything ``fraudkeras serve`` was told (JSON-able, for worker processes)."""

    model: str
    name: str = "fraud"
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 8081  # 0: no gRPC
    workers: int = 1
    threshold: float | None = None
    artifact: str = "litert"
    access_log: bool = False
    poll_seconds: float = POLL_SECONDS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


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
    state = ServerState(settings.name, repository, metrics)

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(
            f"{error.detail}: {request.method} {request.url.path}", error.status_code
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        grpc_server = None
        if settings.grpc_port:
            from fraudkeras.deploy.serving.grpc_v2 import start_grpc

            grpc_server = start_grpc(
                state, settings.host, settings.grpc_port, reuse_port=settings.workers > 1
            )
        repository.start()
        current = repository.current
        grpc_note = f" and gRPC {settings.host}:{settings.grpc_port}" if grpc_server else ""
        log.info("serving %s version %d (%s, threshold %.4f %s) on http://%s:%d%s",
                 settings.name, current.version, current.source, current.threshold,
                 current.threshold_source, settings.host, settings.port, grpc_note)  # fmt: skip
        try:
            yield
        finally:
            state.draining = True
            if grpc_server is not None:
                grpc_server.stop(GRPC_GRACE_SECONDS).wait()
            repository.stop()

    routes = [
        *protocol_v1.routes(state),
        *protocol_v2.routes(state),
        Route("/metrics", metrics_route),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )


def worker_app() -> Starlette:
    """The app of one ``--workers`` process (a uvicorn factory): settings come from
    the environment, and each worker loads its own copy of the model."""
    from fraudkeras.deploy.serving.runner import configure_logging

    configure_logging()
    settings = Settings.from_json(os.environ[SETTINGS_VARIABLE])
    return create_app(settings, load_repository(settings))


def settings_env(settings: Settings) -> dict[str, Any]:
    return {SETTINGS_VARIABLE: settings.to_json()}
