"""Per-epoch training checkpoints, so an interrupted ``train`` can be resumed.

While ``RUN_DIR`` is being trained, ``RUN_DIR.partial/`` holds the state after
the last completed epoch: the model's weights with the optimizer's (Adam's
moments and step count), the best weights so far, the early-stopping counters,
the history, the configuration and the data fingerprint. Weights are plain
NumPy ``.npz`` archives, by position in ``model.weights`` and
``optimizer.variables`` (shapes checked on load): saving them takes ~1 ms where
Keras's ``save_weights`` (HDF5) took 11-54 ms, paid after every epoch of a
0.2-0.4 s epoch (scripts/bench_training.py, ``train-*`` against ``fit-*``). Each save replaces the
folder atomically, so it always holds one whole epoch. It is removed when the
run folder is written. It is not a run folder: no command but ``train
--resume`` accepts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core import files
from fraudkeras._core.errors import ModelFileError
from fraudkeras.runs.layout import checkpoint_dir

__all__ = ["TrainingState", "checkpoint_dir", "load", "restore", "save"]

STATE_FILE = "state.json"
LATEST_WEIGHTS, BEST_WEIGHTS = "latest.npz", "best.npz"


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
    target: Path,
    model: Any,
    state: TrainingState,
    run: dict[str, Any],
    best_weights: list[np.ndarray],
) -> None:
    """Replace ``target`` with the state after this epoch (``run``: config and data;
    ``best_weights``: ``model.get_weights()`` of the best epoch so far)."""
    latest = {f"model_{i}": value for i, value in enumerate(model.get_weights())}
    from keras import ops  # not at import: the CLI imports this before choosing the backend

    optimizer = [ops.convert_to_numpy(variable) for variable in model.optimizer.variables]
    latest |= {f"optimizer_{i}": value for i, value in enumerate(optimizer)}
    with files.atomic_dir(target, force=True) as scratch:
        np.savez(scratch / LATEST_WEIGHTS, **latest)
        np.savez(scratch / BEST_WEIGHTS, *best_weights)
        files.write_json(scratch / STATE_FILE, {**run, "state": state.as_dict()})


def restore(target: Path, model: Any) -> list[np.ndarray]:
    """Set ``model`` and its optimizer to the checkpoint's latest state; return
    the best epoch's weights (for ``model.set_weights``)."""
    model.optimizer.build(model.trainable_variables)
    try:
        with np.load(target / LATEST_WEIGHTS) as latest, np.load(target / BEST_WEIGHTS) as best:
            weights = [latest[f"model_{i}"] for i in range(len(model.weights))]
            optimizer = [latest[f"optimizer_{i}"] for i in range(len(model.optimizer.variables))]
            best_weights = [best[f"arr_{i}"] for i in range(len(model.weights))]
    except (OSError, KeyError, ValueError) as error:
        raise ModelFileError(f"{target}: damaged checkpoint weights ({error})") from error
    variables = [*model.weights, *model.optimizer.variables]
    for variable, value in zip(variables, [*weights, *optimizer], strict=True):
        if tuple(variable.shape) != value.shape:
            raise ModelFileError(
                f"{target}: checkpoint weights do not fit this model "
                f"({variable.path}: {value.shape}, expected {tuple(variable.shape)})"
            )
        variable.assign(value)
    return best_weights


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
