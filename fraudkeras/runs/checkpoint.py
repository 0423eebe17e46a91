"""Per-epoch training checkpoints, so an interrupted ``train`` can be resumed.

While ``RUN_DIR`` is being trained, ``RUN_DIR.partial/`` holds the state after
the last completed epoch: the model's weights with the optimizer's (Adam's
moments and step count), the best weights so far, the early-stopping counters,
the history, the configuration and the data fingerprint. Each save replaces the
folder atomically, so it always holds one whole epoch. It is removed when the
run folder is written. It is not a run folder: no command but ``train
--resume`` accepts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudkeras._core import files
from fraudkeras._core.errors import ModelFileError
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.runs.layout import checkpoint_dir

__all__ = ["TrainingState", "checkpoint_dir", "load", "save"]

STATE_FILE = "state.json"
LATEST_WEIGHTS, BEST_WEIGHTS = "latest.weights.h5", "best.weights.h5"


@dataclass
class TrainingState:
    """Where training stands after ``epochs_done`` epochs (mirrors Keras'
    ``EarlyStopping`` with ``restore_best_weights``)."""

    epochs_done: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    wait: int = 0
    stopped: bool = False
    history: dict[str, list[float]] = field(default_factory=dict)

    def record(self, logs: dict[str, float], monitor: str, patience: int) -> bool:
        """Add one epoch's logs; return True when the monitored value improved.
        Sets ``stopped`` after ``patience`` epochs without improvement."""
        epoch = self.epochs_done
        self.epochs_done += 1
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.wait += 1
        if logs[monitor] > self.best:
            self.best, self.best_epoch, self.wait = float(logs[monitor]), epoch, 0
            return True
        if self.wait >= patience and epoch > 0:
            self.stopped = True
        return False

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs_done": self.epochs_done,
            "best": self.best if math.isfinite(self.best) else None,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped": self.stopped,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingState:
        best = data["best"]
        return cls(
            epochs_done=int(data["epochs_done"]),
            best=-math.inf if best is None else float(best),
            best_epoch=int(data["best_epoch"]),
            wait=int(data["wait"]),
            stopped=bool(data["stopped"]),
            history={k: [float(v) for v in vs] for k, vs in data["history"].items()},
        )


def save(
    target: Path, model: Any, state: TrainingState, run: dict[str, Any], improved: bool
) -> None:
    """Replace ``target`` with the state after this epoch (``run``: config and data)."""
    previous_best = target / BEST_WEIGHTS
    with files.atomic_dir(target, force=True) as scratch:
        with c_output_silenced():  # Keras's serializer may import TensorFlow (C++ notices)
            model.save_weights(scratch / LATEST_WEIGHTS)  # includes the optimizer's variables
        if improved:
            model.save_weights(scratch / BEST_WEIGHTS)
        else:
            (scratch / BEST_WEIGHTS).write_bytes(previous_best.read_bytes())
        files.write_json(scratch / STATE_FILE, {**run, "state": state.as_dict()})


def load(target: Path) -> tuple[dict[str, Any], TrainingState]:
    """The recorded run description and training state of a checkpoint folder."""
    missing = [
        name for name in (STATE_FILE, LATEST_WEIGHTS, BEST_WEIGHTS) if not (target / name).is_file()
    ]
    if not target.is_dir() or missing:
        raise ModelFileError(f"{target}: no resumable checkpoint here")
    record = files.read_json(target / STATE_FILE)
    try:
        return record, TrainingState.from_dict(record["state"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{target}: damaged checkpoint state ({error})") from error
