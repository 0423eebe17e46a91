from __future__ import annotations

import pytest

from fraudkeras._core import backend
from fraudkeras._core.errors import BackendError, ParameterError
from helpers import BACKEND


def test_unknown_backend() -> None:
    with pytest.raises(
        ParameterError, match="unknown backend 'mxnet': choose one of jax, torch, tensorflow"
    ):
        backend.use_backend("mxnet")


def test_uninstalled_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "is_installed", lambda name: False)
    with pytest.raises(
        BackendError, match=r"backend 'torch' is not installed: pip install 'fraudkeras\[torch\]'"
    ):
        backend.use_backend("torch")


def test_switching_after_keras_is_imported_is_refused() -> None:
    import keras  # noqa: F401

    other = next(
        name for name in backend.BACKENDS if name != BACKEND and backend.is_installed(name)
    )
    with pytest.raises(BackendError, match=f"Keras already runs on '{BACKEND}'"):
        backend.use_backend(other)
    assert backend.use_backend(BACKEND) == BACKEND
    assert backend.active_backend() == BACKEND
