"""A Ctrl-C that cannot get lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
SIGINT arrives. If that is inside a finalizer (``__del__``, a weakref or GC
callback, as TensorFlow, PyTorch and h5py objects have), the exception is
printed as "ignored" and discarded, and the process carries on: about one
``fraudkeras train`` in ten did so in CI. The command line therefore installs
:func:`handler`, which also records the interrupt, and long loops call
:func:`check` at safe points (each training batch and epoch, each export
format, each scored batch) to raise it again. From the Python API nothing is
installed and :func:`check` does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

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


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived and was swallowed since."""
    if _pending:
        raise KeyboardInterrupt
