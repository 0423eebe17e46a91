"""``fraudkeras serve``: a model server (TF Serving REST, Open Inference Protocol V2
over REST and gRPC, health, Prometheus metrics, hot-swapped versions)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

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
        "--workers",
        type=int,
        default=1,
        help=f"server processes (default: %(default)s; 1 to {MAX_WORKERS})",
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
        "readiness follows) and a repository polled for new versions "
        "(default: %(default)s; 0.05 to 3,600)",
    )  # fmt: skip
    limits = serve.add_argument_group("limits (see docs/serving.md)")
    for limit in LIMITS:
        default = getattr(_DEFAULTS, limit.dest)
        limits.add_argument(
            f"--{limit.flag}", type=limit.kind, default=default,
            help=f"{limit.help} (default: %(default)s; {limit.span})",
        )  # fmt: skip
    return serve


class Limit(NamedTuple):
    """One limit's flag, type, allowed range (inclusive) and help."""

    flag: str
    kind: type[int] | type[float]
    low: int | float
    high: int | float
    help: str

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")

    @property
    def span(self) -> str:
        return (
            f"{self.low:,} to {self.high:,}"
            if self.kind is int
            else f"{self.low:g} to {self.high:,g}"
        )

    def check(self, value: Any) -> int | float:
        """``value`` if it is in range, else a ParameterError naming the option."""
        if self.kind is int:
            return check_int(self.dest, value, minimum=int(self.low), maximum=int(self.high))
        return check_float(self.dest, value, low=self.low, high=self.high)


_DEFAULTS = Settings(model="")
_DAY = 86_400.0
#: every limit of ``serve``, with its range (the defaults are Settings'): beyond the
#: upper ends a value disables the limit or exhausts the process (threads, timers)
LIMITS = (
    Limit("max-header-bytes", int, 1024, 8 << 20,
          "request line + headers per request; beyond: 431"),
    Limit("max-connections", int, 1, 1_000_000,
          "open HTTP connections per process; beyond: 503"),
    Limit("read-timeout", float, 0.001, _DAY, "seconds to receive a whole request; beyond: 408"),
    Limit("inference-timeout", float, 0.001, _DAY,
          "seconds for a request's inference; beyond: 504"),
    Limit("grpc-max-concurrent-rpcs", int, 1, 1_000_000,
          "gRPC calls at once; beyond: RESOURCE_EXHAUSTED"),
    Limit("grpc-threads", int, 1, 1024, "gRPC handler threads"),
    Limit("deregister-seconds", float, 0.0, 3600.0,
          "at SIGTERM, answer ready=503 but keep serving this long"),
    Limit("drain-seconds", float, 0.0, 3600.0,
          "then, time for requests in flight; after it they are cut"),
    Limit("max-batch-size", int, 1, 1_000_000, "transactions merged into one runtime call"),
    Limit("batch-timeout-micros", int, 0, 3_600_000_000,
          "wait this long for more requests to fill a batch"),
    Limit("num-batch-threads", int, 1, 256, "runtime calls in parallel"),
    Limit("max-queued-requests", int, 1, 1_000_000,
          "requests waiting for a batch; beyond: 503"),
)  # fmt: skip
#: most ``--workers`` (each a process with its own model and threads)
MAX_WORKERS = 256


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean drain."""
    from fraudkeras.deploy.serving.runner import serve

    limits: dict[str, Any] = {
        limit.dest: limit.check(getattr(args, limit.dest)) for limit in LIMITS
    }
    settings = Settings(
        model=str(args.model), name=args.name, host=args.host,
        port=port("port", args.port), grpc_port=port("grpc_port", args.grpc_port),
        workers=check_int("workers", args.workers, minimum=1, maximum=MAX_WORKERS),
        threshold=None if args.threshold is None else check_float(
            "threshold", args.threshold, low=0.0, high=1.0),
        artifact=args.artifact, access_log=args.access_log,
        poll_seconds=check_float("poll_seconds", args.poll_seconds, low=0.05, high=3600.0),
        **limits,
    )  # fmt: skip
    return serve(settings)
