"""The Open Inference Protocol (KServe V2 / Triton) over REST, and the request
checks its gRPC form shares.

One input, ``transactions`` (FP32, shape [n, 30], FEATURES order); three outputs,
``fraud_probability`` (FP32, [n]), ``is_fraud`` (BOOL, [n], by the run's decision, or
at ``parameters.threshold`` of the request) and ``expected_loss`` (FP32, [n],
``p x (Amount + chargeback fee)``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras._core.provenance import package_version
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.serving.endpoints import (
    ServerState,
    decide,
    endpoint,
    expected_loss,
    json_response,
    read_json,
)
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.payloads import (
    INPUT_NAME,
    check_count,
    checked,
    object_body,
    threshold_parameter,
)

PROBABILITY, FLAG, EXPECTED_LOSS = "fraud_probability", "is_fraud", "expected_loss"
OUTPUTS = (PROBABILITY, FLAG, EXPECTED_LOSS)
DATATYPE = "FP32"
SERVER_NAME = "fraudkeras"


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": package_version(), "extensions": []}


def model_metadata(name: str, model: ServedModel) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [str(model.version)],
        "platform": f"fraudkeras_{model.artifact.kind}",
        "inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [-1, N_FEATURES]}],
        "outputs": [
            {"name": PROBABILITY, "datatype": "FP32", "shape": [-1]},
            {"name": FLAG, "datatype": "BOOL", "shape": [-1]},
            {"name": EXPECTED_LOSS, "datatype": "FP32", "shape": [-1]},
        ],
    }


def check_input(name: str, datatype: str, shape: Any) -> int:
    """The number of transactions a V2 input declares, after checking its header."""
    if name != INPUT_NAME:
        raise RequestError(f"unknown input {name!r}; this model takes {INPUT_NAME!r}")
    if datatype != DATATYPE:
        raise RequestError(f"input {INPUT_NAME!r} must be {DATATYPE}, got {datatype!r}")
    valid = isinstance(shape, list) and all(type(d) is int for d in shape)
    if not valid or len(shape) != 2 or shape[1] != N_FEATURES or shape[0] < 0:
        raise RequestError(f"input {INPUT_NAME!r} must have shape [n, {N_FEATURES}], got {shape}")
    check_count(shape[0], f"input {INPUT_NAME!r}")
    count: int = shape[0]
    return count


def requested_outputs(names: list[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise RequestError(f"unknown output(s) {', '.join(map(repr, unknown))}; this model has "
                           f"{PROBABILITY!r}, {FLAG!r} and {EXPECTED_LOSS!r}")  # fmt: skip
    return tuple(names) or OUTPUTS


def routes(state: ServerState) -> list[Route]:
    """The V2 REST routes (health, metadata, readiness, infer)."""

    async def v2_live(request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(request: Request) -> Response:
        ready = not state.draining
        return json_response({"ready": ready}, 200 if ready else 503)

    async def v2_server(request: Request) -> Response:
        return json_response(server_metadata())

    @endpoint
    async def v2_model(request: Request) -> Response:
        model = state.model(request.path_params["name"], request.path_params.get("version"))
        return json_response(model_metadata(state.name, model))

    @endpoint
    async def v2_model_ready(request: Request) -> Response:
        state.model(request.path_params["name"], request.path_params.get("version"))
        ready = not state.draining
        return json_response({"name": state.name, "ready": ready}, 200 if ready else 503)

    @endpoint
    async def v2_infer(request: Request) -> Response:
        model = state.model(request.path_params["name"], request.path_params.get("version"))
        return json_response(infer(state, model, object_body(await read_json(request))))

    model_path, version_path = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2/health/live", v2_live),
        Route("/v2/health/ready", v2_ready),
        Route("/v2", v2_server),
        *(Route(path, v2_model) for path in (model_path, version_path)),
        *(Route(f"{path}/ready", v2_model_ready) for path in (model_path, version_path)),
        *(
            Route(f"{path}/infer", v2_infer, methods=["POST"])
            for path in (model_path, version_path)
        ),
    ]


def infer(state: ServerState, model: ServedModel, body: dict[str, Any]) -> dict[str, Any]:
    """A V2 JSON inference request answered (tensor data flat or nested, row-major)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(f"'inputs' must be a list holding one input, {INPUT_NAME!r}")
    given = inputs[0]
    count = check_input(given.get("name", ""), given.get("datatype", ""), given.get("shape"))
    if "data" not in given:
        raise RequestError(f"input {INPUT_NAME!r} has no 'data'")
    features = checked(given["data"], f"input {INPUT_NAME!r}", (count, N_FEATURES))
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError("'parameters' must be an object")
    threshold = parameters.get("threshold")
    if threshold is not None:
        threshold = threshold_parameter(threshold)
    wanted = body.get("outputs") or []
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise RequestError("'outputs' must be a list of objects with a 'name'")
    names = requested_outputs([str(o.get("name", "")) for o in wanted])
    probabilities, flags, chosen = decide(state, model, features, threshold)
    tensors = {
        PROBABILITY: {
            "name": PROBABILITY,
            "datatype": "FP32",
            "shape": [count],
            "data": probabilities,
        },
        FLAG: {"name": FLAG, "datatype": "BOOL", "shape": [count], "data": flags},
        EXPECTED_LOSS: {
            "name": EXPECTED_LOSS,
            "datatype": "FP32",
            "shape": [count],
            "data": expected_loss(model, features, probabilities),
        },
    }
    answer: dict[str, Any] = {
        "model_name": state.name,
        "model_version": str(model.version),
        "parameters": {"threshold": chosen},
        "outputs": [tensors[n] for n in names],
    }
    if "id" in body:
        answer["id"] = body["id"]
    return answer
