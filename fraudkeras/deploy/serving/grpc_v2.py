"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``).

The message and service definitions are not ours: they are the generated stubs
that ship in ``tritonclient`` (Triton's superset of KServe's
``grpc_predict_v2.proto``, wire-compatible with it), so Triton's and KServe's gRPC
clients work unchanged. We implement the V2 methods (health, metadata, infer);
Triton-only methods answer UNIMPLEMENTED. Inputs may come as
``raw_input_contents`` (what tritonclient sends) or typed ``fp32_contents``;
outputs go back as ``raw_output_contents``, as Triton answers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from fraudkeras._core.errors import ListenError, first_line
from fraudkeras._core.provenance import package_version
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.payloads import MAX_BODY_BYTES, checked, threshold_parameter
from fraudkeras.deploy.serving.state import InferenceTimeout, ServerState, decide
from fraudkeras.deploy.serving.v2 import (
    EXTENSIONS,
    OUTPUT_TYPES,
    SERVER_NAME,
    check_input,
    model_metadata,
    output_values,
    requested_outputs,
)

log = logging.getLogger("fraudkeras")
_STATUS = {
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
Method = TypeVar("Method", bound=Callable[..., Any])


def _guarded(method: Method) -> Method:
    """Refused requests end with their gRPC status; each call is counted and timed."""

    @functools.wraps(method)
    def call(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        start, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return method(self, request, context)
        except RequestError as error:
            code = _STATUS.get(error.status, grpc.StatusCode.INVALID_ARGUMENT)
            context.abort(code, str(error))
        except Exception as error:
            code = grpc.StatusCode.INTERNAL
            log.exception("gRPC %s failed", method.__name__)
            context.abort(code, f"internal error: {first_line(error)}")
        finally:
            seconds = time.perf_counter() - start
            self.state.metrics.observe("grpc", method.__name__, code.value[0], seconds)

    return call  # type: ignore[return-value]


class Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """The V2 methods, answered from the same state as the REST routes."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    @_guarded
    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    @_guarded
    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.state.ready)

    @_guarded
    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.state.model(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.state.ready)

    @_guarded
    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=package_version(),
                                         extensions=EXTENSIONS)  # fmt: skip

    @_guarded
    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        model = self.state.model(request.name, request.version or None)
        meta = model_metadata(self.state.name, model)
        tensors = {
            side: [pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta[side]]
            for side in ("inputs", "outputs")
        }
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"], **tensors
        )

    @_guarded
    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        model = self.state.model(request.model_name, request.model_version or None)
        features = _features(request)
        threshold = _threshold(request.parameters)
        names = requested_outputs([o.name for o in request.outputs])
        future = self.state.submit(model, features)
        try:
            probabilities = future.result(self.state.inference_timeout)
        except FutureTimeout:
            future.cancel()
            raise InferenceTimeout(self.state.inference_timeout) from None
        decided = decide(model, features, probabilities, threshold)
        response = pb.ModelInferResponse(
            model_name=self.state.name, model_version=str(model.version), id=request.id
        )
        response.parameters["threshold"].double_param = decided.threshold
        values = output_values(decided)
        for name in names:
            datatype, dtype = OUTPUT_TYPES[name]
            response.outputs.add(name=name, datatype=datatype, shape=[len(features)])
            response.raw_output_contents.append(
                np.ascontiguousarray(values[name], dtype=dtype).tobytes()
            )
        return response


def _features(request: Any) -> np.ndarray:
    if len(request.inputs) != 1:
        raise RequestError(f"expected one input, 'transactions'; got {len(request.inputs)}")
    given = request.inputs[0]
    count = check_input(given.name, given.datatype, list(given.shape))
    where = "input 'transactions'"
    if request.raw_input_contents:
        raw = request.raw_input_contents[0]
        if len(raw) != count * N_FEATURES * 4:
            raise RequestError(
                f"{where}: {len(raw)} raw bytes; shape [{count}, {N_FEATURES}] FP32 needs "
                f"{count * N_FEATURES * 4}"
            )
        values: Any = np.frombuffer(raw, dtype="<f4")
    else:
        values = np.asarray(given.contents.fp32_contents, dtype=np.float32)
    return checked(values, where, (count, N_FEATURES))


def _threshold(parameters: Any) -> float | None:
    if "threshold" not in parameters:
        return None
    parameter = parameters["threshold"]
    kind = parameter.WhichOneof("parameter_choice")
    value = getattr(parameter, kind) if kind else None
    return threshold_parameter(value)


def start_grpc(
    state: ServerState, host: str, port: int, *, reuse_port: bool, threads: int,
    max_concurrent_rpcs: int,
) -> grpc.Server:  # fmt: skip
    """A started gRPC server on ``host:port``; ``reuse_port`` lets worker processes
    share it. Beyond ``max_concurrent_rpcs`` calls at once, gRPC answers
    RESOURCE_EXHAUSTED instead of queueing without bound."""
    options = [
        ("grpc.max_receive_message_length", MAX_BODY_BYTES),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    server = grpc.server(
        ThreadPoolExecutor(threads, "grpc"), options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )  # fmt: skip
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(state), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise ListenError(f"gRPC cannot listen on {host}:{port} ({first_line(error)})") from error
    if bound == 0:
        raise ListenError(f"gRPC cannot listen on {host}:{port} (port in use?)")
    server.start()
    return server
