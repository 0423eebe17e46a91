"""uvicorn's httptools protocol with the limits it lacks: the size of a request's
line and headers (431 beyond ``--max-header-bytes``) and the time to receive a
whole request (408 beyond ``--read-timeout``; a client sending byte by byte is
cut, not waited for). Both are answered before the request reaches the app.

The limits are class attributes, set once per process by :func:`configure`
(uvicorn builds one protocol object per connection, from the class alone).

Why a subclass of uvicorn's protocol rather than its public settings or an ASGI
middleware: uvicorn has no header limit for httptools, and h11's
``h11_max_incomplete_event_size`` answers 400 with no reason, not 431; its
``timeout_keep_alive`` applies only between requests, so nothing public bounds
the time to receive one. A middleware runs only once the headers are complete,
so it can neither stop a client sending endless headers nor time out one sending
them byte by byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fraudkeras.deploy.serving.metrics import DISCONNECTED

#: module path uvicorn imports the class from (also in ``--workers`` processes)
PROTOCOL = "fraudkeras.deploy.serving.http_limits:BoundedHttpTools"


class _Refused(Exception):
    """Stops the parser once a request has been answered with an error."""


def _answer(status: int, reason: str, message: str) -> bytes:
    body = ('{"error": "' + message + '"}').encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class BoundedHttpTools(HttpToolsProtocol):
    """A connection that refuses oversized headers and slow requests."""

    max_header_bytes = 16 * 1024
    read_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._receiving = self._headers_done = self._refused = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override, unused-ignore]
        super().connection_made(transport)
        self._start_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal of ours already answered
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._receiving, self._headers_done = True, False
        self._start_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._receiving = False
        self._stop_timer()
        super().on_message_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            limit = self.max_header_bytes
            message = f"request line and headers exceed {limit} bytes (--max-header-bytes)"
            self._refuse(431, "Request Header Fields Too Large", message)
            raise _Refused()

    def _start_timer(self) -> None:
        self._stop_timer()
        self._timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        """The request was not received in time: 408, and the connection closed.
        (A keep-alive connection idle between requests is uvicorn's to close.)"""
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        if not self._receiving:
            if self.cycle is not None:
                return  # idle between requests: keep-alive's timeout applies
        elif self._headers_done:
            scope: dict[str, Any] = self.scope  # type: ignore[assignment, unused-ignore]
            scope[DISCONNECTED] = True  # the app sees the close; not its error
        message = f"request not received within {self.read_timeout:g} s (--read-timeout)"
        self._refuse(408, "Request Timeout", message)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self.logger.info("refused a request: %s", message)
        if not self.transport.is_closing():
            self.transport.write(_answer(status, reason, message))
            self.transport.close()


def configure(max_header_bytes: int, read_timeout: float) -> None:
    """Set this process's limits (before it accepts connections)."""
    BoundedHttpTools.max_header_bytes = max_header_bytes
    BoundedHttpTools.read_timeout = read_timeout
