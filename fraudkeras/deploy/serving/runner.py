"""Running the server: bind, then serve until SIGTERM or Ctrl-C.

The model is loaded and verified before any port is opened, so a bad model ends
the command with the CLI's exit codes (ModelFileError: 5, BackendError: 4...).
Then uvicorn serves REST (one process, or ``--workers`` processes sharing the
socket) and each process serves gRPC too. SIGTERM or Ctrl-C: uvicorn stops
accepting, finishes the requests in flight, the gRPC service gets its grace
period, and the command exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

from fraudkeras._core.backend import is_installed
from fraudkeras._core.errors import BackendError, ListenError, ParameterError
from fraudkeras._core.validation import check_int

log = logging.getLogger("fraudkeras")
ARTIFACT_CHOICES = ("litert", "litert-fp16", "litert-dynamic", "litert-int8", "onnx",
                    "saved_model", "keras")  # fmt: skip
#: what the serve extra installs (module names), checked before anything starts
NEEDS = ("starlette", "uvicorn", "grpc", "prometheus_client", "tritonclient")
_DRAIN_SECONDS = 30


def serve(settings: Any) -> int:
    """Load and verify the model, bind the ports, serve; 0 after a clean drain."""
    missing = [name for name in NEEDS if not is_installed(name)]
    if missing:
        raise BackendError(f"serving needs {', '.join(missing)}: pip install 'fraudkeras[serve]'")
    from fraudkeras.deploy.serving.app import load_repository

    repository = load_repository(settings)  # a bad model stops us here, before any port
    rest = _bind(settings.host, settings.port)
    if settings.grpc_port:
        _bind(settings.host, settings.grpc_port).close()  # taken? say so now, not in a worker
    return _serve(settings, repository, rest)


def port(name: str, value: int) -> int:
    """A port number option (0 to 65535)."""
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
