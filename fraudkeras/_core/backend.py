"""Choosing the Keras backend. Keras reads ``KERAS_BACKEND`` once, at import, so
this must run before anything imports keras; afterwards it can only confirm."""

from __future__ import annotations

import importlib.util
import os
import sys

from fraudkeras._core.errors import BackendError, ParameterError
from fraudkeras._core.quiet import c_output_silenced

BACKENDS = ("jax", "torch", "tensorflow")
DEFAULT_BACKEND = "jax"
_EXTRA = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}


def is_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def default_backend() -> str:
    """``$KERAS_BACKEND`` when it names a backend, else JAX (the one place for this choice)."""
    configured = os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
    return configured if configured in BACKENDS else DEFAULT_BACKEND


def quiet_environment() -> dict[str, str]:
    """Environment variables that keep TensorFlow's and XLA's C++ start-up logs off
    the terminal; they must be set before those libraries load (``--debug`` skips them)."""
    return {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}


def use_backend(name: str) -> str:
    """Make ``name`` the Keras backend of this process and return it.

    Raises ParameterError for an unknown name and BackendError when the
    framework is not installed or Keras already runs on another backend.
    """
    if name not in BACKENDS:
        raise ParameterError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if not is_installed(name):
        raise BackendError(
            f"backend {name!r} is not installed: pip install 'fraudkeras[{_EXTRA[name]}]'"
        )
    if "keras" in sys.modules:
        current = active_backend()
        if current != name:
            raise BackendError(
                f"Keras already runs on {current!r} in this process; start a new process "
                f"with KERAS_BACKEND={name} (a backend cannot be switched once Keras is imported)"
            )
        return name
    os.environ["KERAS_BACKEND"] = name
    for key, value in quiet_environment().items():
        os.environ.setdefault(key, value)
    if name == "torch":
        import torch  # noqa: F401  (torch must be imported before tensorflow: the reverse can segfault)
    if name == "tensorflow":
        with c_output_silenced():  # its absl and oneDNN start-up lines go straight to fd 2
            import tensorflow  # noqa: F401
    return name


def active_backend() -> str:
    """The backend Keras uses (or will use) in this process."""
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
