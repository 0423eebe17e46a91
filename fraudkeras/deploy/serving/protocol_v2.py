"""The Open Inference Protocol (KServe V2 / Triton) over REST: the routes. The
protocol itself (checks, binary tensor data, answers) is :mod:`.v2`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras.deploy.serving import v2
from fraudkeras.deploy.serving.endpoints import (
    endpoint,
    json_response,
    parse,
    probabilities_for,
    read_body,
)
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.state import ServerState, decide


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
    async def v2_infer(request: Request) -> Response:
        model = state.model(request.path_params["name"], request.path_params.get("version"))
        body = await read_body(request)
        parsed = await parse(body, _parse, request.headers.get(v2.HEADER_LENGTH))
        return await infer(state, model, parsed)

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


async def infer(state: ServerState, model: ServedModel, request: v2.InferRequest) -> Response:
    """A checked V2 request answered, as JSON or JSON + binary tensor data."""
    probabilities = await probabilities_for(state, model, request.features)
    decided = decide(model, request.features, probabilities, request.threshold)
    body, header_length = v2.answer(state.name, model, request, decided)
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
