"""One ``train_step``/``test_step`` pair per Keras backend, picked by name the way
Keras picks its own trainer: only the active backend's module is imported."""

from __future__ import annotations

import importlib
from types import ModuleType


def steps_for_backend(backend: str) -> ModuleType:
    return importlib.import_module(f"fraudkeras.modeling.train_steps.{backend}_steps")
