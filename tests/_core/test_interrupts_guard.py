"""The sticky Ctrl-C of :mod:`fraudkeras._core.interrupts`, made deterministic: a SIGINT
delivered inside a finalizer (where Python discards the KeyboardInterrupt) is
raised again at the next safe point."""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path

import pytest

from fraudkeras._core import interrupts


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored afterwards
    previous = signal.getsignal(signal.SIGINT)
    interrupts.install()
    yield
    signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(interrupts, "_pending", False)


class _SignalledWhileFinalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # Python runs the handler here, inside __del__
            pass


def test_an_interrupt_swallowed_by_a_finalizer_is_raised_again(installed, capsys) -> None:
    interrupts.check()  # nothing pending: no-op
    _SignalledWhileFinalized()  # KeyboardInterrupt raised in __del__ and discarded
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    assert "Exception ignored" not in capsys.readouterr().err  # no report of the swallow


def test_an_interrupt_swallowed_by_a_gc_callback_is_raised_again(installed) -> None:
    """The case seen in CI: JAX's ``_xla_gc_callback`` (Keras imports JAX)."""

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):
                pass

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()


def test_other_unraisable_errors_are_still_reported() -> None:
    from types import SimpleNamespace

    seen: list[type] = []
    hook = interrupts._QuietInterrupts(lambda unraisable: seen.append(unraisable.exc_type))
    hook(SimpleNamespace(exc_type=KeyboardInterrupt))
    hook(SimpleNamespace(exc_type=ValueError))
    assert seen == [ValueError]


def test_training_stops_at_the_next_batch_and_writes_nothing(
    installed, small, tmp_path: Path, monkeypatch
) -> None:
    from fraudkeras.training.train import train

    monkeypatch.setattr(interrupts, "_pending", True)  # as if a SIGINT had been swallowed
    with pytest.raises(KeyboardInterrupt):
        train(small, out=tmp_path / "run", epochs=2, batch_size=128)
    assert not (tmp_path / "run").exists()
