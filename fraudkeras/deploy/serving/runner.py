"""Running the server: bind, then serve until SIGTERM or Ctrl-C.

The model is loaded and verified before any port is opened, so a bad model ends
the command with the CLI's exit codes (ModelFileError: 5, BackendError: 4...).
Then uvicorn serves REST (one process, or ``--workers`` processes sharing the
socket; its httptools protocol bounded by :mod:`.http_limits` and sending each
response in one write (:mod:`.corked`), its connections by ``--max-connections``)
and each process serves gRPC too. SIGTERM or Ctrl-C:
readiness turns false at once, uvicorn stops accepting and answers the requests
in flight for up to ``--drain-seconds``, the gRPC service gets what is left of
that time, and the command exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from types import FrameType
from typing import Any

from fraudkeras._core.backend import is_installed
from fraudkeras._core.errors import ListenError, ParameterError
from fraudkeras._core.extras import missing_extra
from fraudkeras._core.validation import check_int
from fraudkeras.deploy.formats import SERVABLE
from fraudkeras.deploy.serving.settings import Settings

log = logging.getLogger("fraudkeras")
#: what ``--artifact`` may pick (the format table's names)
ARTIFACT_CHOICES = SERVABLE
#: what the serve extra installs (module names), checked before anything starts
NEEDS = ("starlette", "uvicorn", "grpc", "prometheus_client", "tritonclient")


def serve(settings: Settings) -> int:
    """Load and verify the model, bind the ports, serve; 0 after a clean drain."""
    missing = [name for name in NEEDS if not is_installed(name)]
    if missing:
        absent = ModuleNotFoundError(f"No module named {missing[0]!r}", name=missing[0])
        raise missing_extra(absent, "serve")
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


def _serve(settings: Settings, repository: Any, rest: socket.socket) -> int:
    import uvicorn

    from fraudkeras.deploy.serving import corked, http_limits
    from fraudkeras.deploy.serving.app import create_app, settings_env

    http_limits.configure(settings.max_header_bytes, settings.read_timeout)
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "lifespan": "on",
        "access_log": settings.access_log,
        "log_level": "info" if settings.access_log else "warning",
        "timeout_graceful_shutdown": settings.drain_seconds, "server_header": False,
        "http": corked.PROTOCOL, "limit_concurrency": settings.max_connections,
    }  # fmt: skip
    received: list[int] = []
    previous = {sig: signal.signal(sig, _recorder(received)) for sig in _SIGNALS}
    try:
        if settings.workers == 1:
            config = uvicorn.Config(create_app(settings, repository), **options)
            server = uvicorn.Server(config)
            server.run(sockets=[rest.dup()])  # ours stays open: see _answer_backlog
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
        late = _answer_backlog(rest)
        if received or settings.workers > 1:  # the supervisor takes the signals itself
            late_note = f"; {late} connection(s) arriving after the port closed got 503"
            log.info("stopped (signal %d)%s", (received or [signal.SIGTERM])[0],
                     late_note if late else "")  # fmt: skip


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STOPPED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: 32\r\n\r\n"
    b'{"error": "server is stopping"}\n'
)


def _answer_backlog(sock: socket.socket) -> int:
    """Answer 503 to the connections the kernel accepted after the server stopped
    taking them (they wait in the listen backlog), then close the port: closing it
    with connections queued would reset them, dropping requests already sent."""
    sock.setblocking(False)
    answered = 0
    while True:
        try:
            connection, _ = sock.accept()
        except OSError:  # none left (or the socket never listened)
            break
        with connection:
            connection.settimeout(0.2)
            try:
                connection.sendall(_STOPPED)
                connection.shutdown(socket.SHUT_WR)
                while connection.recv(65536):  # read what was sent: a close with unread
                    pass  # data would reset the connection before the client reads the 503
            except OSError:
                pass
        answered += 1
    sock.close()
    return answered


def _recorder(received: list[int]) -> Any:
    """uvicorn re-raises the stop signal once it has drained; here it only records it
    (the default SIGTERM action would kill the process with 143 instead of exiting 0)."""

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    return record
