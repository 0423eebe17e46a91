"""Registering ``FraudMLP`` with Keras without choosing the backend early.

A ``.keras`` file of a subclassed model loads only once its class is registered
in the process, and registering means importing Keras, which fixes the backend.
``import fraudkeras`` must do neither, yet plain ``keras.saving.load_model``
must work after it, whatever the import order. So: if Keras is already
imported, register now; otherwise a one-shot import hook registers right after
Keras's own import finishes, under whatever backend the user chose by then.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any


def after_keras_import(module_name: str) -> None:
    """Import ``module_name`` (which registers classes with Keras) as soon as Keras
    is imported: now if it already is, else right after its import."""
    if "keras" in sys.modules:
        importlib.import_module(module_name)
    elif not any(isinstance(f, _AfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras(module_name))


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of the top-level ``keras`` package."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        # Stays installed until Keras is really imported: ``importlib.util.find_spec``
        # (TensorFlow probes for Keras that way) asks too, and imports nothing.
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, self)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, finder: _AfterKeras) -> None:
        self.inner, self.finder = inner, finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        if self.finder in sys.meta_path:  # one shot: Keras is imported once
            sys.meta_path.remove(self.finder)
        self.inner.exec_module(module)
        importlib.import_module(self.finder.module_name)
