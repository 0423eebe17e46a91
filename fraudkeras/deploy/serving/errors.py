"""The serving errors: a refused request (answered, never raised out of the server)
and a server that cannot start listening."""

from __future__ import annotations

from fraudkeras.errors import FraudKerasError


class RequestError(FraudKerasError, ValueError):
    """A request the server refuses; ``status`` is the HTTP code it is answered with."""

    exit_code = 2

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ListenError(FraudKerasError, OSError):
    """A port is taken or cannot be bound: the server does not start."""

    exit_code = 9
