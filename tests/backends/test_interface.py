"""The backend is chosen once, in one place."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import keras

import fraudkeras
from fraudkeras.backends import Backend, current

PACKAGE = Path(fraudkeras.__file__).parent
#: the only modules that may ask which backend runs: the choice itself, seeding and
#: export (its converter is TensorFlow's)
ALLOWED = {
    "_core/backend.py",
    "backends/choice.py",
    "modeling/seeding.py",
    "deploy/export.py",
}


def test_the_active_backend_is_the_one_chosen_and_only_its_module_is_loaded() -> None:
    backend = current()
    assert isinstance(backend, Backend) and backend.name == keras.backend.backend()
    assert current() is backend
    others = {"jax", "torch", "tensorflow"} - {backend.name}
    assert not [name for name in others if f"fraudkeras.backends.{name}_backend" in sys.modules]


def test_no_other_module_asks_which_backend_runs() -> None:
    asking = re.compile(r"backend\(\) *(==|!=|in\b)|_GRADIENTS\[|\bbackend\(\)\]")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).as_posix() not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if asking.search(line)
    ]
    assert found == []
