"""One send per response: uvicorn writes a response's status line and headers,
then its body, as two writes, each a system call that also wakes the client.
Here the writes a connection makes in one pass of the event loop are held and
leave together at the end of that pass (what TCP_CORK does in the kernel), so
a JSON answer goes out in one send. Nothing else about the connection changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fraudkeras.deploy.serving.http_limits import BoundedHttpTools

#: module path uvicorn imports the class from (also in ``--workers`` processes)
PROTOCOL = "fraudkeras.deploy.serving.corked:CorkedHttpTools"


class CorkedTransport:
    """A transport whose writes within one loop pass are joined into one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self._held)) + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:  # the rest is the transport's own
        return getattr(self._transport, name)


class CorkedHttpTools(BoundedHttpTools):
    """uvicorn's httptools protocol, with its limits, writing through a corked transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override, unused-ignore]
        corked: Any = CorkedTransport(transport, self.loop)
        super().connection_made(corked)
