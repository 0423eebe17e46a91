"""``fraudkeras serve``: a model server (TF Serving REST, Open Inference Protocol V2
over REST and gRPC, health, Prometheus metrics, hot-swapped versions)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.validation import check_float, check_int
from fraudkeras.deploy.serving.runner import ARTIFACT_CHOICES, port
from fraudkeras.deploy.serving.settings import Settings


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``serve`` to the CLI's sub-commands."""
    serve = commands.add_parser(
        "serve", parents=[common],
        help="serve a model over TF Serving REST and the V2 inference protocol (REST, gRPC)",
    )  # fmt: skip
    serve.add_argument(
        "model", type=Path,
        help="a run folder, a model file (.tflite/.onnx/.keras, SavedModel), or a repository "
        "of numbered versions (MODEL/1/, MODEL/2/...)",
    )  # fmt: skip
    serve.add_argument(
        "--name", default="fraud", help="the model's name in URLs (default: %(default)s)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="0.0.0.0 to listen on every address (default: %(default)s)",
    )
    serve.add_argument("--port", type=int, default=8080, help="REST port (default: %(default)s)")
    serve.add_argument(
        "--grpc-port", type=int, default=8081, help="V2 gRPC port (0: none) (default: %(default)s)"
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes (default: %(default)s)"
    )
    serve.add_argument("--threshold", type=float, help="flag p >= T (default: the run's decision)")
    serve.add_argument(
        "--artifact", choices=ARTIFACT_CHOICES, default="litert",
        help="which export of a run folder to serve (default: %(default)s, float32 LiteRT)",
    )  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--poll-seconds", type=float, default=2.0,
        help="how often the served model is re-checked (its file's sha256, its probe; "
        "readiness follows) and a repository polled for new versions (default: %(default)s)",
    )  # fmt: skip
    limits = serve.add_argument_group("limits (see docs/serving.md)")
    for flag, kind, help_text in _LIMITS:
        default = getattr(_DEFAULTS, flag.replace("-", "_"))
        limits.add_argument(f"--{flag}", type=kind, default=default,
                            help=f"{help_text} (default: %(default)s)")  # fmt: skip
    return serve


_DEFAULTS = Settings(model="")
#: (flag, type, help) of every limit; the defaults are Settings'
_LIMITS = (
    ("max-header-bytes", int, "request line + headers per request; beyond: 431"),
    ("max-connections", int, "open HTTP connections per process; beyond: 503"),
    ("read-timeout", float, "seconds to receive a whole request; beyond: 408"),
    ("inference-timeout", float, "seconds for a request's inference; beyond: 504"),
    ("grpc-max-concurrent-rpcs", int, "gRPC calls at once; beyond: RESOURCE_EXHAUSTED"),
    ("grpc-threads", int, "gRPC handler threads"),
    ("deregister-seconds", float, "at SIGTERM, answer ready=503 but keep serving this long"),
    ("drain-seconds", float, "then, time for requests in flight; after it they are cut"),
    ("max-batch-size", int, "transactions merged into one runtime call"),
    ("batch-timeout-micros", int, "wait this long for more requests to fill a batch"),
    ("num-batch-threads", int, "runtime calls in parallel"),
    ("max-queued-requests", int, "requests waiting for a batch; beyond: 503"),
)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean drain."""
    from fraudkeras.deploy.serving.runner import serve

    positive = {"minimum": 1}

    settings = Settings(
        model=str(args.model), name=args.name, host=args.host,
        port=port("port", args.port), grpc_port=port("grpc_port", args.grpc_port),
        workers=check_int("workers", args.workers, minimum=1),
        threshold=None if args.threshold is None else check_float(
            "threshold", args.threshold, low=0.0, high=1.0),
        artifact=args.artifact, access_log=args.access_log,
        poll_seconds=check_float("poll_seconds", args.poll_seconds, low=0.05, high=3600.0),
        max_header_bytes=check_int("max_header_bytes", args.max_header_bytes, minimum=1024),
        max_connections=check_int("max_connections", args.max_connections, **positive),
        read_timeout=check_float("read_timeout", args.read_timeout, low=0.001, high=86_400.0),
        inference_timeout=check_float(
            "inference_timeout", args.inference_timeout, low=0.001, high=86_400.0),
        grpc_max_concurrent_rpcs=check_int(
            "grpc_max_concurrent_rpcs", args.grpc_max_concurrent_rpcs, **positive),
        grpc_threads=check_int("grpc_threads", args.grpc_threads, **positive),
        deregister_seconds=check_float(
            "deregister_seconds", args.deregister_seconds, low=0.0, high=3600.0),
        drain_seconds=check_float("drain_seconds", args.drain_seconds, low=0.0, high=3600.0),
        max_batch_size=check_int("max_batch_size", args.max_batch_size, **positive),
        batch_timeout_micros=check_int(
            "batch_timeout_micros", args.batch_timeout_micros, minimum=0),
        num_batch_threads=check_int("num_batch_threads", args.num_batch_threads, **positive),
        max_queued_requests=check_int("max_queued_requests", args.max_queued_requests,
                                      **positive),
    )  # fmt: skip
    return serve(settings)
