"""The server's log lines go to stderr as ``fraudkeras: <message>`` in every process."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    """Our messages on stderr in a worker process (the CLI sets this up in its own)."""
    logger = logging.getLogger("fraudkeras")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fraudkeras: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
