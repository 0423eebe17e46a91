"""The Open Inference Protocol (KServe V2 / Triton) over REST: the routes. The
protocol itself (checks, binary tensor data, answers) is :mod:`.v2`."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras.deploy.serving import v2
from fraudkeras.deploy.serving.endpoints import (
    answered,
    endpoint,
    json_response,
    parse,
    probabilities_for,
    read_body,
    receive_body,
)
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.metrics import ROUTE, ASGIApp, Receive, Scope, Send
from fraudkeras.deploy.serving.state import ServerState, decide

#: the infer routes' paths (``{name}`` and ``{version}`` as Starlette matches them)
_INFER_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_JSON = (b"content-type", b"application/json")
_BINARY = (b"content-type", b"application/octet-stream")


def _parse(body: bytes, header_length: str | None) -> v2.InferRequest:
    return v2.parse_request(*v2.split_body(body, header_length))


def routes(state: ServerState) -> list[Route]:
    """The V2 REST routes (health, metadata, readiness, infer)."""

    async def v2_live(request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(request: Request) -> Response:
        ready = state.ready
        return json_response({"ready": ready}, 200 if ready else 503)

    async def v2_server(request: Request) -> Response:
        return json_response(v2.server_metadata())

    @endpoint
    async def v2_model(request: Request) -> Response:
        model = state.model(request.path_params["name"], request.path_params.get("version"))
        return json_response(v2.model_metadata(state.name, model))

    @endpoint
    async def v2_model_ready(request: Request) -> Response:
        state.model(request.path_params["name"], request.path_params.get("version"))
        ready = state.ready
        return json_response({"name": state.name, "ready": ready}, 200 if ready else 503)

    @endpoint
    async def v2_infer(request: Request) -> Response:  # POSTs are answered by InferRoute
        model = state.model(request.path_params["name"], request.path_params.get("version"))
        body = await read_body(request)
        parsed = await parse(body, _parse, request.headers.get(v2.HEADER_LENGTH))
        return _response(*await infer(state, model, parsed))

    model_path, version_path = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
    return [  # the busiest route first: the router tries them in order
        *(
            Route(f"{path}/infer", v2_infer, methods=["POST"])
            for path in (model_path, version_path)
        ),
        Route("/v2/health/live", v2_live),
        Route("/v2/health/ready", v2_ready),
        Route("/v2", v2_server),
        *(Route(path, v2_model) for path in (model_path, version_path)),
        *(Route(f"{path}/ready", v2_model_ready) for path in (model_path, version_path)),
    ]


async def infer(
    state: ServerState, model: ServedModel, request: v2.InferRequest
) -> tuple[bytes, int | None]:
    """A checked V2 request answered: the body, and the length of its JSON header
    when binary tensor data follows."""
    probabilities = await probabilities_for(state, model, request.features)
    decided = decide(model, request.features, probabilities, request.threshold)
    return v2.answer(state.name, model, request, decided)


def _response(body: bytes, header_length: int | None) -> Response:
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


class InferRoute:
    """Pure ASGI, in front of the router: ``POST /v2/models/{name}[/versions/{v}]/infer``,
    the busiest route, answered with the same checks and answers as the Starlette
    route but without the router's matching and Request/Response objects (a large
    share of a one-transaction request's cost). Everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _INFER_PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        scope[ROUTE] = "v2_infer"
        result = await answered(scope, self._answer(match, scope, receive))
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        body, header_length = result
        headers = [(b"content-length", b"%d" % len(body)), _JSON]
        if header_length is not None:
            headers[1] = _BINARY
            headers.append((b"inference-header-content-length", b"%d" % header_length))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, match: re.Match[str], scope: Scope, receive: Receive
    ) -> tuple[bytes, int | None]:
        model = self.state.model(match["name"], match["version"])
        length = header_length = None
        for key, value in scope["headers"]:  # the first of each, as Starlette's Headers
            if key == b"content-length" and length is None:
                length = value.decode("latin-1")
            elif key == b"inference-header-content-length" and header_length is None:
                header_length = value.decode("latin-1")
        body = await receive_body(receive, length)
        parsed = await parse(body, _parse, header_length)
        return await infer(self.state, model, parsed)
