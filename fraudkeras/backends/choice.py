"""The active backend's :class:`~fraudkeras.backends.base.Backend`, chosen once."""

from __future__ import annotations

import functools
import importlib

import keras

from fraudkeras.backends.base import Backend

_MODULES = {
    "jax": "fraudkeras.backends.jax_backend",
    "torch": "fraudkeras.backends.torch_backend",
    "tensorflow": "fraudkeras.backends.tensorflow_backend",
}


@functools.cache
def current() -> Backend:
    """The implementation for ``keras.backend.backend()``; only its module is imported."""
    name = keras.backend.backend()
    module = importlib.import_module(_MODULES[name])
    backend: Backend = module.BACKEND
    return backend
