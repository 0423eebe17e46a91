"""Keeping third-party C++ chatter off the user's terminal.

TensorFlow, LiteRT and the converters write start-up and progress lines straight
to the process's file descriptors 1 and 2 from C++ (absl and oneDNN notices,
"Created TensorFlow Lite XNNPACK delegate", "fully_quantize: 0 ..."), where
neither Python's ``logging`` nor ``TF_CPP_MIN_LOG_LEVEL`` reaches. The only
switch is the descriptors themselves, redirected to ``/dev/null`` for the few
calls that print. ``FRAUDKERAS_DEBUG=1`` (``--debug``) leaves them alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

DEBUG_VARIABLE = "FRAUDKERAS_DEBUG"


@contextlib.contextmanager
def c_output_silenced() -> Iterator[None]:
    """Send what C/C++ code writes to stdout and stderr to /dev/null meanwhile."""
    if os.environ.get(DEBUG_VARIABLE) == "1":
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real descriptors (an embedding host): nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
