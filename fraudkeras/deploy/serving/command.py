"""``fraudkeras serve``: its arguments and its run.

The model is loaded and verified before any port is opened, so a bad model ends
the command with the CLI's exit codes (ModelFileError: 5, BackendError: 4...).
Then uvicorn serves REST (one process, or ``--workers`` processes sharing the
socket) and each process serves gRPC too. SIGTERM or Ctrl-C: uvicorn stops
accepting, finishes the requests in flight, the gRPC service gets its grace
period, and the command exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from fraudkeras.backend import is_installed
from fraudkeras.deploy.serving.errors import ListenError
from fraudkeras.errors import BackendError, ParameterError
from fraudkeras.validation import check_float, check_int

log = logging.getLogger("fraudkeras")
ARTIFACT_CHOICES = ("litert", "litert-fp16", "litert-dynamic", "litert-int8", "onnx",
                    "saved_model", "keras")  # fmt: skip
#: what the serve extra installs (module names), checked before anything starts
NEEDS = ("starlette", "uvicorn", "grpc", "prometheus_client", "tritonclient")
_DRAIN_SECONDS = 30


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the CLI's sub-commands."""
    serve = commands.add_parser(
        "serve", parents=parents,
        help="serve a model over TF Serving REST and the V2 inference protocol (REST, gRPC)",
    )  # fmt: skip
    serve.add_argument(
        "model", type=Path,
        help="a run folder, a model file (.tflite/.onnx/.keras, SavedModel), or a repository "
        "of numbered versions (MODEL/1/, MODEL/2/...)",
    )  # fmt: skip
    serve.add_argument("--name", default="fraud", help="the model's name in URLs")
    serve.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every address")
    serve.add_argument("--port", type=int, default=8080, help="REST port")
    serve.add_argument("--grpc-port", type=int, default=8081, help="V2 gRPC port (0: none)")
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--threshold", type=float, help="flag p >= T (default: the run's tuned)")
    serve.add_argument(
        "--artifact", choices=ARTIFACT_CHOICES, default="litert",
        help="which export of a run folder to serve (default: %(default)s, float32 LiteRT)",
    )  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--poll-seconds", type=float, default=2.0,
        help="how often a repository is checked for new versions",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean drain."""
    missing = [name for name in NEEDS if not is_installed(name)]
    if missing:
        raise BackendError(f"serving needs {', '.join(missing)}: pip install 'fraudkeras[serve]'")
    from fraudkeras.deploy.serving.app import Settings, load_repository

    settings = Settings(
        model=str(args.model), name=args.name, host=args.host,
        port=_port("--port", args.port), grpc_port=_port("--grpc-port", args.grpc_port),
        workers=check_int("--workers", args.workers, minimum=1),
        threshold=None if args.threshold is None else check_float(
            "--threshold", args.threshold, low=0.0, high=1.0),
        artifact=args.artifact, access_log=args.access_log,
        poll_seconds=check_float("--poll-seconds", args.poll_seconds, low=0.05, high=3600.0),
    )  # fmt: skip
    repository = load_repository(settings)  # a bad model stops us here, before any port
    rest = _bind(settings.host, settings.port)
    if settings.grpc_port:
        _bind(settings.host, settings.grpc_port).close()  # taken? say so now, not in a worker
    return _serve(settings, repository, rest)


def _port(name: str, value: int) -> int:
    if not 0 <= check_int(name, value, minimum=0) <= 65535:
        raise ParameterError(f"{name} must be a port number (0 to 65535), got {value}")
    return value


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port} ({error.strerror})") from error
    sock.set_inheritable(True)
    return sock


def _serve(settings: Any, repository: Any, rest: socket.socket) -> int:
    import uvicorn

    from fraudkeras.deploy.serving.app import create_app, settings_env

    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "lifespan": "on",
        "access_log": settings.access_log,
        "log_level": "info" if settings.access_log else "warning",
        "timeout_graceful_shutdown": _DRAIN_SECONDS, "server_header": False,
    }  # fmt: skip
    received: list[int] = []
    previous = {sig: signal.signal(sig, _recorder(received)) for sig in _SIGNALS}
    try:
        if settings.workers == 1:
            config = uvicorn.Config(create_app(settings, repository), **options)
            server = uvicorn.Server(config)
            server.run(sockets=[rest])
            return 0 if server.started else 1
        from uvicorn.supervisors import Multiprocess

        del repository  # each worker loads its own
        os.environ.update(settings_env(settings))
        config = uvicorn.Config(
            "fraudkeras.deploy.serving.app:worker_app", factory=True,
            workers=settings.workers, **options,
        )  # fmt: skip
        Multiprocess(config, sockets=[rest]).run()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        rest.close()
        if received:
            log.info("stopped (signal %d); requests in flight were answered", received[0])


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _recorder(received: list[int]) -> Any:
    """uvicorn re-raises the stop signal once it has drained; here it only records it
    (the default SIGTERM action would kill the process with 143 instead of exiting 0)."""

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    return record


def configure_logging() -> None:
    """Our messages on stderr in a worker process (the CLI sets this up in its own)."""
    logger = logging.getLogger("fraudkeras")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fraudkeras: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
