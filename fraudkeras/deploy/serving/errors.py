"""The serving errors: a refused request (answered, never raised out of the server)
(:class:`ListenError`, a server that cannot start listening, is in the CLI's hierarchy)."""

from __future__ import annotations

from fraudkeras._core.errors import FraudKerasError


class RequestError(FraudKerasError, ValueError):
    """A request the server refuses; ``status`` is the HTTP code it is answered with."""

    exit_code = 2

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
