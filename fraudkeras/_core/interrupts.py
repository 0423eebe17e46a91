"""A Ctrl-C that cannot get lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
SIGINT arrives. If that is inside a finalizer or a garbage-collector callback,
Python reports the exception as "ignored" and discards it, and the process
carries on. Keras imports JAX whenever it is installed, whatever the backend,
and JAX registers ``_xla_gc_callback`` in ``gc.callbacks``: a Ctrl-C that lands
during a collection was lost, about one ``fraudkeras train`` in ten in CI.

The command line therefore installs :func:`handler`, which also records the
interrupt, and long loops call :func:`check` at safe points (each training
batch and epoch, each export format, each scored batch) to raise it again. The
"Exception ignored" report of such a swallowed interrupt is silenced, since it
is raised again. From the Python API nothing is installed and :func:`check`
does nothing.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_pending = False


def handler(signum: int, frame: FrameType | None) -> None:
    """SIGINT: remember it, then interrupt as Python's own handler does."""
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """Use :func:`handler` for SIGINT (main thread only, as ``signal`` requires)."""
    global _pending
    _pending = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        if not isinstance(sys.unraisablehook, _QuietInterrupts):
            sys.unraisablehook = _QuietInterrupts(sys.unraisablehook)


class _QuietInterrupts:
    """An unraisable hook that drops swallowed KeyboardInterrupts (:func:`check`
    raises them again) and passes everything else on."""

    def __init__(self, previous: Callable[[Any], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            return
        self.previous(unraisable)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived and was swallowed since."""
    if _pending:
        raise KeyboardInterrupt
