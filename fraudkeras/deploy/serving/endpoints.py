"""What every REST endpoint shares: the server's state, reading a bounded body,
JSON answers, one-line JSON errors, and the decision itself."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from fraudkeras._core.errors import first_line
from fraudkeras.data.schema import FEATURES
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.metrics import ServingMetrics
from fraudkeras.deploy.serving.payloads import MAX_BODY_BYTES, parse_json
from fraudkeras.deploy.serving.repository import ModelRepository
from fraudkeras.metrics.decisions import Decision

AMOUNT = FEATURES.index("Amount")

log = logging.getLogger("fraudkeras")
Handler = Callable[[Request], Awaitable[Response]]
#: a body past the limit is read on (and dropped) up to here, so the client can read its 413
_DRAIN_LIMIT = 8 * MAX_BODY_BYTES

try:
    import orjson

    def _dumps(payload: Any) -> bytes:
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - orjson ships with the serve extra
    import json

    def _dumps(payload: Any) -> bytes:
        return json.dumps(payload).encode()


@dataclass
class ServerState:
    """Shared by every endpoint: which model, under what name, and its metrics."""

    name: str
    repository: ModelRepository
    metrics: ServingMetrics
    draining: bool = False

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


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(_dumps(payload), status, media_type="application/json")


def error_response(message: str, status: int) -> Response:
    """The one error shape of every REST route: ``{"error": "<one line>"}``."""
    return json_response({"error": message.replace("\n", " ")}, status)


def endpoint(handler: Handler) -> Handler:
    """Answer RequestError with its 4xx, and anything unexpected with a logged 500:
    never an exception out of a handler, never a dead worker."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestError as error:
            return error_response(str(error), error.status)
        except Exception as error:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(f"internal error: {first_line(error)}", 500)

    return guarded


async def read_json(request: Request) -> Any:
    """The request's JSON, refusing bodies over MAX_BODY_BYTES with 413."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise RequestError("invalid Content-Length header")
    body = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            body += chunk
        elif size > _DRAIN_LIMIT:
            break
    if size > MAX_BODY_BYTES:
        raise RequestError(
            f"request body of {size:,d}+ bytes; the limit is {MAX_BODY_BYTES:,d}", 413
        )
    return parse_json(bytes(body))


def decide(
    state: ServerState, model: ServedModel, features: np.ndarray, threshold: float | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities, flags (the model's decision, or ``p >= threshold`` given one),
    and the threshold."""
    state.metrics.batch(len(features))
    chosen = model.threshold if threshold is None else threshold
    probabilities = model.predict(features)
    rule = model.decision if threshold is None else Decision("threshold", threshold)
    return probabilities, rule.flags(probabilities, features[:, AMOUNT]), chosen


def expected_loss(model: ServedModel, features: np.ndarray, probabilities: np.ndarray) -> Any:
    """``p x (Amount + chargeback fee)`` of each transaction, as float32."""
    return model.decision.expected_loss(probabilities, features[:, AMOUNT]).astype(np.float32)
