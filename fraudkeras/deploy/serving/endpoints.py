"""What every REST endpoint shares: reading a bounded body, JSON answers, one-line
JSON errors, and waiting for a batched inference without blocking the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from fraudkeras._core.errors import first_line
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.metrics import DISCONNECTED, Receive, Scope
from fraudkeras.deploy.serving.payloads import MAX_BODY_BYTES, dumps
from fraudkeras.deploy.serving.state import InferenceTimeout, ServerState

log = logging.getLogger("fraudkeras")
Handler = Callable[[Request], Awaitable[Response]]
Parsed = TypeVar("Parsed")
Answer = TypeVar("Answer")
#: a body past the limit is read on (and dropped) up to here, so the client can read its 413
_DRAIN_LIMIT = 8 * MAX_BODY_BYTES
#: bodies larger than this are parsed on a worker thread, not the event loop
OFFLOAD_BYTES = 64 * 1024


class ClientGone(Exception):
    """The client closed the connection before sending its whole request."""


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status, media_type="application/json")


def error_response(message: str, status: int) -> Response:
    """The one error shape of every REST route: ``{"error": "<one line>"}``."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    body = dumps({"error": message.replace("\n", " ")})
    return Response(body, status, media_type="application/json", headers=headers)


def endpoint(handler: Handler) -> Handler:
    """A Starlette handler whose every outcome is a response (see :func:`answered`)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        response: Response = await answered(request.scope, handler(request))
        return response

    return guarded


async def answered(scope: Scope, work: Awaitable[Answer]) -> Answer | Response:
    """Answer RequestError with its 4xx/5xx, a client that left with nothing (counted
    apart, no traceback), and anything unexpected with a logged 500: never an
    exception out of a handler, never a dead worker."""
    try:
        return await work
    except RequestError as error:
        return error_response(str(error), error.status)
    except (ClientGone, ClientDisconnect):
        scope[DISCONNECTED] = True
        return Response(status_code=400)  # never sent: nobody is listening
    except Exception as error:
        log.exception("%s %s failed", scope["method"], scope["path"])
        return error_response(f"internal error: {first_line(error)}", 500)


async def read_body(request: Request) -> bytes:
    """The request's body, refusing bodies over MAX_BODY_BYTES with 413."""
    return await receive_body(request.receive, request.headers.get("content-length"))


async def receive_body(receive: Receive, declared: str | None) -> bytes:
    """The body of an ASGI request (``declared``: its Content-Length header), read
    from ``receive`` and refused with 413 past MAX_BODY_BYTES."""
    if declared is not None and not declared.isdigit():
        raise RequestError("invalid Content-Length header")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        elif size > _DRAIN_LIMIT:
            break
    if size > MAX_BODY_BYTES:
        raise RequestError(
            f"request body of {size:,d}+ bytes; the limit is {MAX_BODY_BYTES:,d}", 413
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def parse(body: bytes, parser: Callable[..., Parsed], *args: Any) -> Parsed:
    """``parser(body, *args)``; on a worker thread for a large body, so that parsing
    10,000 transactions does not hold up health checks and small requests."""
    if len(body) <= OFFLOAD_BYTES:
        return parser(body, *args)
    return await run_in_threadpool(parser, body, *args)


async def probabilities_for(
    state: ServerState, model: ServedModel, features: np.ndarray
) -> np.ndarray:
    """The model's probabilities, from the batching queue (the event loop only waits)."""
    future = state.batcher.submit_async(model, features)
    timer = asyncio.get_running_loop().call_later(
        state.inference_timeout, _expire, future, state.inference_timeout
    )
    try:
        return await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[np.ndarray], seconds: float) -> None:
    if not future.done():  # the batch thread skips it, or drops its late answer
        future.set_exception(InferenceTimeout(seconds))
