"""The Open Inference Protocol (KServe V2 / Triton) without a transport: request
checks, JSON and binary tensor data, answers. REST (Starlette) and gRPC are thin
front ends over this module.

One input, ``transactions`` (FP32, shape [n, 30], FEATURES order); three outputs,
``fraud_probability`` (FP32, [n]), ``is_fraud`` (BOOL, [n], by the run's decision,
or at ``parameters.threshold`` of the request) and ``expected_loss`` (FP32, [n],
``p x (Amount + chargeback fee)``).

The binary tensor data extension (what tritonclient's HTTP client sends by
default): the body is a JSON header of ``Inference-Header-Content-Length`` bytes,
then each input with ``parameters.binary_data_size`` as raw little-endian bytes,
in input order. Outputs asked for with ``parameters.binary_data`` (or the
request's ``parameters.binary_data_output``) come back the same way: FP32 as 4
bytes each, BOOL as 1 byte each, after a JSON header whose length the response's
``Inference-Header-Content-Length`` gives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fraudkeras._core.provenance import package_version
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel
from fraudkeras.deploy.serving.payloads import (
    INPUT_NAME,
    check_count,
    checked,
    dumps,
    object_body,
    parse_json,
    threshold_parameter,
)
from fraudkeras.deploy.serving.state import Decided

PROBABILITY, FLAG, EXPECTED_LOSS = "fraud_probability", "is_fraud", "expected_loss"
OUTPUTS = (PROBABILITY, FLAG, EXPECTED_LOSS)
DATATYPE = "FP32"
SERVER_NAME = "fraudkeras"
EXTENSIONS = ["binary_tensor_data"]
HEADER_LENGTH = "inference-header-content-length"
#: each output's V2 datatype and the NumPy dtype of its raw bytes
OUTPUT_TYPES = {PROBABILITY: ("FP32", "<f4"), FLAG: ("BOOL", "?"), EXPECTED_LOSS: ("FP32", "<f4")}


class InferRequest(NamedTuple):
    """A checked V2 inference request (a tuple: built for every request, and a
    frozen dataclass costs several times as much to build)."""

    features: np.ndarray
    threshold: float | None
    outputs: tuple[str, ...]
    binary: frozenset[str]  #: outputs to answer as raw bytes
    id: str | None


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": package_version(), "extensions": EXTENSIONS}


def model_metadata(name: str, model: ServedModel) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [str(model.version)],
        "platform": f"fraudkeras_{model.artifact.kind}",
        "inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [-1, N_FEATURES]}],
        "outputs": [
            {"name": name, "datatype": datatype, "shape": [-1]}
            for name, (datatype, _) in OUTPUT_TYPES.items()
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


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a request body and the binary data after it."""
    if header_length is None:
        return object_body(parse_json(body)), b""
    if not header_length.strip().isdigit():
        raise RequestError(f"Inference-Header-Content-Length must be a byte count, got "
                           f"{header_length[:20]!r}")  # fmt: skip
    length = int(header_length)
    if length > len(body):
        raise RequestError(
            f"Inference-Header-Content-Length {length} exceeds the {len(body)}-byte body"
        )
    return object_body(parse_json(body[:length])), body[length:]


def parse_request(document: dict[str, Any], binary: bytes = b"") -> InferRequest:
    """Check a V2 request (its JSON header and binary data) and take it apart."""
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(f"'inputs' must be a list holding one input, {INPUT_NAME!r}")
    given = inputs[0]
    count = check_input(given.get("name", ""), given.get("datatype", ""), given.get("shape"))
    features = _features(given, count, binary)
    parameters = _parameters(document, "parameters")
    threshold = parameters.get("threshold")
    if threshold is not None:
        threshold = threshold_parameter(threshold)
    binary_default = _flag(parameters, "binary_data_output", "parameters")
    wanted = document.get("outputs") or []
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise RequestError("'outputs' must be a list of objects with a 'name'")
    names = requested_outputs([str(o.get("name", "")) for o in wanted])
    binary_outputs = set(names) if binary_default else set()
    for output in wanted:
        where = f"outputs[{output.get('name')!r}].parameters"
        choice = _parameters(output, "parameters", where).get("binary_data")
        if choice is not None:
            if not isinstance(choice, bool):
                raise RequestError(f"{where}.binary_data must be true or false")
            (binary_outputs.add if choice else binary_outputs.discard)(str(output["name"]))
    request_id = document.get("id")
    return InferRequest(
        features, threshold, names, frozenset(binary_outputs),
        None if request_id is None else str(request_id),
    )  # fmt: skip


def _features(given: dict[str, Any], count: int, binary: bytes) -> np.ndarray:
    where = f"input {INPUT_NAME!r}"
    size = _parameters(given, "parameters", f"{where} parameters").get("binary_data_size")
    if size is None:
        if binary:
            raise RequestError(f"{len(binary)} bytes of binary data that no input claims "
                               "(no 'binary_data_size' parameter)")  # fmt: skip
        if "data" not in given:
            raise RequestError(f"{where} has no 'data'")
        return checked(given["data"], where, (count, N_FEATURES))
    if type(size) is not int or size < 0:
        raise RequestError(f"{where}: binary_data_size must be a byte count, got {size!r}")
    if "data" in given:
        raise RequestError(f"{where} has both 'data' and binary_data_size; send one")
    needed = count * N_FEATURES * 4
    if size != needed:
        raise RequestError(f"{where}: binary_data_size {size}; shape [{count}, {N_FEATURES}] "
                           f"FP32 is {needed} bytes")  # fmt: skip
    if len(binary) != size:
        raise RequestError(
            f"{where}: {len(binary)} bytes follow the JSON header; binary_data_size says {size}"
        )
    return checked(np.frombuffer(binary, dtype="<f4"), where, (count, N_FEATURES))


def _parameters(owner: dict[str, Any], key: str, where: str | None = None) -> dict[str, Any]:
    parameters = owner.get(key) or {}
    if not isinstance(parameters, dict):
        raise RequestError(f"'{where or key}' must be an object")
    return parameters


def _flag(parameters: dict[str, Any], key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(f"{where}.{key} must be true or false")
    return value


def output_values(decided: Decided) -> dict[str, np.ndarray]:
    """Each output's values, by output name."""
    return {
        PROBABILITY: decided.probabilities,
        FLAG: decided.flags,
        EXPECTED_LOSS: decided.expected_loss,
    }


def answer(
    name: str, model: ServedModel, request: InferRequest, decided: Decided
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON header when binary data follows."""
    count = len(decided.probabilities)
    values = output_values(decided)
    tensors, raw = [], []
    for output in request.outputs:
        datatype, dtype = OUTPUT_TYPES[output]
        tensor: dict[str, Any] = {"name": output, "datatype": datatype, "shape": [count]}
        if output in request.binary:
            content = np.ascontiguousarray(values[output], dtype=dtype).tobytes()
            tensor["parameters"] = {"binary_data_size": len(content)}
            raw.append(content)
        else:
            tensor["data"] = values[output]
        tensors.append(tensor)
    payload: dict[str, Any] = {
        "model_name": name,
        "model_version": str(model.version),
        "parameters": {"threshold": decided.threshold},
        "outputs": tensors,
    }
    if request.id is not None:
        payload["id"] = request.id
    header = dumps(payload)
    if not raw:
        return header, None
    return b"".join([header, *raw]), len(header)
