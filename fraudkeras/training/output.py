"""What a training run writes and returns: :class:`Output` (where it goes, what
is written beside it) and :class:`TrainedRun` (the model, its metrics and how it
was made)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from fraudkeras.data.class_weights import ClassWeights
from fraudkeras.data.splits import Split
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.metrics.classification import Predictions
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs.config import TrainConfig


@dataclass
class Output:
    """Where a run goes and what is written beside it."""

    out: Path | None
    force: bool = False
    report: bool = True
    plots: bool = True
    verbose: int | str = 0
    callbacks: Sequence[keras.callbacks.Callback] = field(default_factory=tuple)
    #: devices (processes or in-process devices) training together
    devices: int = 1
    #: False in a process of a group that is not the first: it writes no file
    primary: bool = True
    #: keep a streamed table's decoded training rows on disk after their first read
    stream_cache: bool = False


@dataclass
class TrainedRun:
    """What :func:`~fraudkeras.training.train.train` returns: the model, its
    metrics and how it was made."""

    model: FraudMLP
    config: TrainConfig
    split: Split
    class_weights: ClassWeights
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    data: dict[str, Any]
    run_dir: Path | None = None
    report_dir: Path | None = None
    #: a streamed table's split (the parts in ``split`` are then bounded samples)
    streamed: StreamSplit | None = None
    #: the predictions on validation and test, whole (streamed or not)
    holdout: tuple[Predictions, Predictions] | None = None
