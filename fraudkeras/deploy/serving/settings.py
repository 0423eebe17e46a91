"""Everything ``fraudkeras serve`` is told: the model, the ports, and every limit
(each with a safe default; see docs/serving.md for TF Serving's and KServe's
equivalents). JSON-able, so ``--workers`` processes get the same settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fraudkeras.deploy.formats import BY_NAME

POLL_SECONDS = 2.0
DEFAULT_ARTIFACT = BY_NAME["litert"].name


@dataclass(frozen=True)
class Settings:
    """One server's configuration."""

    model: str
    name: str = "fraud"
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 8081  # 0: no gRPC
    workers: int = 1
    threshold: float | None = None
    artifact: str = DEFAULT_ARTIFACT
    access_log: bool = False
    poll_seconds: float = POLL_SECONDS
    # limits
    max_header_bytes: int = 16 * 1024  #: request line + headers; beyond: 431
    max_connections: int = 1024  #: open HTTP connections per process; beyond: 503
    read_timeout: float = 30.0  #: seconds to receive a whole request; beyond: 408
    inference_timeout: float = 10.0  #: seconds from queueing to answer; beyond: 504
    grpc_max_concurrent_rpcs: int = 256  #: beyond: RESOURCE_EXHAUSTED
    grpc_threads: int = 16
    deregister_seconds: float = 1.0  #: at SIGTERM, unready but serving (load balancers leave)
    drain_seconds: float = 10.0  #: then, how long requests in flight may take
    # adaptive batching (TF Serving's batching parameters)
    max_batch_size: int = 512  #: transactions merged into one runtime call
    batch_timeout_micros: int = 0  #: wait for more requests to fill a batch
    num_batch_threads: int = 2  #: runtime calls in parallel
    max_queued_requests: int = 2048  #: waiting requests; beyond: 503 (gRPC UNAVAILABLE)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))
