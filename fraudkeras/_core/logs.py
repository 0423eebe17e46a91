"""fraudkeras's log lines, configured in one place: ``fraudkeras: message`` on
stderr, for the command line and for the worker processes it starts."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("fraudkeras")


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (not the stream seen at setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Our own messages on stderr at ``level``; other libraries' loggers stay as
    they were, but for JAX's "no TPU" notices."""
    if not any(isinstance(handler, StderrHandler) for handler in log.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("fraudkeras: %(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
