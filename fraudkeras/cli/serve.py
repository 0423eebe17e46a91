"""``fraudkeras serve``: a model server (TF Serving REST, Open Inference Protocol V2
over REST and gRPC, health, Prometheus metrics, hot-swapped versions)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.validation import check_float, check_int
from fraudkeras.deploy.serving.runner import ARTIFACT_CHOICES, port


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
    serve.add_argument("--threshold", type=float, help="flag p >= T (default: the run's tuned)")
    serve.add_argument(
        "--artifact", choices=ARTIFACT_CHOICES, default="litert",
        help="which export of a run folder to serve (default: %(default)s, float32 LiteRT)",
    )  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--poll-seconds", type=float, default=2.0,
        help="how often a repository is checked for new versions (default: %(default)s)",
    )  # fmt: skip
    return serve


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean drain."""
    from fraudkeras.deploy.serving.app import Settings
    from fraudkeras.deploy.serving.runner import serve

    settings = Settings(
        model=str(args.model), name=args.name, host=args.host,
        port=port("port", args.port), grpc_port=port("grpc_port", args.grpc_port),
        workers=check_int("workers", args.workers, minimum=1),
        threshold=None if args.threshold is None else check_float(
            "threshold", args.threshold, low=0.0, high=1.0),
        artifact=args.artifact, access_log=args.access_log,
        poll_seconds=check_float("poll_seconds", args.poll_seconds, low=0.05, high=3600.0),
    )  # fmt: skip
    return serve(settings)
