"""TensorFlow Serving's REST API (the "V1" protocol).

``POST /v1/models/{name}[/versions/{v}]:predict`` takes ``instances`` (row format:
each row 30 numbers in FEATURES order, an object keyed by feature name, or TF
Serving's ``{"transactions": [...]}``) or ``inputs`` (columnar: a list of rows,
``{"transactions": rows}`` or one list per feature name). The signature has three
outputs (``fraud_probability``, ``is_fraud`` by the run's decision and
``expected_loss``, ``p x (Amount + chargeback fee)``), so, as TF Serving does for
a multi-output signature, row requests get ``predictions`` as one object per row
and columnar requests get ``outputs`` as one list per output.
``GET /v1/models/{name}`` is the version status and ``GET /v1/models/{name}/metadata``
the signature.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.serving.endpoints import (
    endpoint,
    json_response,
    parse,
    probabilities_for,
    read_body,
)
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.metrics import ROUTE
from fraudkeras.deploy.serving.payloads import (
    FEATURE_SET,
    INPUT_NAME,
    columns_to_matrix,
    object_body,
    parse_json,
    to_matrix,
)
from fraudkeras.deploy.serving.state import ServerState, decide

SIGNATURES = ("serving_default", "serve", "")
PROBABILITY, FLAG, EXPECTED_LOSS = "fraud_probability", "is_fraud", "expected_loss"
_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<rest>:predict|/metadata)?$"
)


def routes(state: ServerState) -> list[Route]:
    """The V1 routes; one handler parses the path, as ``name:predict`` is one segment."""

    @endpoint
    async def v1(request: Request) -> Response:
        match = _PATH.match(request.path_params["path"])
        if match is None:
            raise RequestError(f"no such route: {request.url.path}", 404)
        name, version, rest = match["name"], match["version"], match["rest"]
        if rest == ":predict":
            request.scope[ROUTE] = "v1_predict"
            if request.method != "POST":
                raise RequestError(":predict takes POST", 405)
            return await predict(state, request, name, version)
        if request.method != "GET":
            raise RequestError(f"{request.url.path} takes GET", 405)
        model = state.model(name, version)
        if rest == "/metadata":
            request.scope[ROUTE] = "v1_metadata"
            return json_response(metadata(state.name, model.version))
        request.scope[ROUTE] = "v1_status"
        return json_response(status(model.version))

    return [Route("/v1/models/{path:path}", v1, methods=["GET", "POST"])]


async def predict(state: ServerState, request: Request, name: str, version: str | None) -> Response:
    model = state.model(name, version)
    rows, features = await parse(await read_body(request), _features)
    probabilities = await probabilities_for(state, model, features)
    decided = decide(model, features, probabilities, None)
    flags, losses = decided.flags, decided.expected_loss
    if rows:
        each = zip(probabilities.tolist(), flags.tolist(), losses.tolist(), strict=True)
        answers = [{PROBABILITY: p, FLAG: f, EXPECTED_LOSS: e} for p, f, e in each]
        return json_response({"predictions": answers})
    return json_response(
        {"outputs": {PROBABILITY: probabilities, FLAG: flags, EXPECTED_LOSS: losses}}
    )


def _features(content: bytes) -> tuple[bool, np.ndarray]:
    """Whether the request is in row form, and its transactions."""
    body = object_body(parse_json(content))
    signature = body.get("signature_name", "")
    if signature not in SIGNATURES:
        raise RequestError(
            f"unknown signature_name {signature!r}; this model has 'serving_default'"
        )
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("expected exactly one of 'instances' (rows) or 'inputs' (columns)")
    if "instances" in body:
        return True, to_matrix(body["instances"], "instances")
    return False, _columns(body["inputs"])


def _columns(inputs: Any) -> Any:
    if isinstance(inputs, dict):
        if set(inputs) == {INPUT_NAME}:
            return to_matrix(inputs[INPUT_NAME], f"inputs.{INPUT_NAME}")
        if set(inputs) & FEATURE_SET or len(inputs) > 1:
            return columns_to_matrix(inputs, "inputs")
        raise RequestError(
            f"inputs: unknown input {next(iter(inputs), '')!r}; expected {INPUT_NAME!r}"
        )
    return to_matrix(inputs, "inputs")


def status(version: int) -> dict[str, Any]:
    """TF Serving's ``GetModelStatus`` answer for the one loaded version."""
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def _tensor(name: str, dtype: str, dims: list[int]) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in dims],
            "unknown_rank": False,
        },
        "name": name,
    }


def metadata(name: str, version: int) -> dict[str, Any]:
    """TF Serving's ``GetModelMetadata`` answer: the one signature, in its JSON form."""
    signature = {
        "inputs": {
            INPUT_NAME: _tensor(f"serving_default_{INPUT_NAME}:0", "DT_FLOAT", [-1, N_FEATURES])
        },
        "outputs": {
            PROBABILITY: _tensor("StatefulPartitionedCall:0", "DT_FLOAT", [-1]),
            FLAG: _tensor("StatefulPartitionedCall:1", "DT_BOOL", [-1]),
            EXPECTED_LOSS: _tensor("StatefulPartitionedCall:2", "DT_FLOAT", [-1]),
        },
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
    }
