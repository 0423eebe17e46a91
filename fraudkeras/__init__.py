"""fraudkeras: a credit-card fraud detector defined once as a Keras 3 model, trained,
evaluated and exported identically under JAX, PyTorch and TensorFlow.

Keras fixes its backend when first imported, so this package imports it lazily:
``import fraudkeras`` is cheap, and the first use of a name below that needs
Keras (``FraudMLP``, ``train``, ``evaluate``) imports it under ``KERAS_BACKEND``
(or call :func:`use_backend` first).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fraudkeras.backend import BACKENDS, use_backend
from fraudkeras.config import TrainConfig
from fraudkeras.data import Transactions, load_transactions
from fraudkeras.errors import (
    BackendError,
    DataError,
    ExportError,
    FraudKerasError,
    ModelFileError,
    OutputError,
    ParameterError,
    TrainingError,
)
from fraudkeras.schema import FEATURES, LABEL
from fraudkeras.splits import Split, split
from fraudkeras.thresholds import ThresholdPolicy

if TYPE_CHECKING:
    from fraudkeras.artifacts import open_artifact
    from fraudkeras.attribution import attributions, explain
    from fraudkeras.comparison import compare
    from fraudkeras.evaluation import evaluate, retune
    from fraudkeras.exporting import export
    from fraudkeras.importance import permutation_importance
    from fraudkeras.model import FraudMLP, load_model
    from fraudkeras.report import write_report
    from fraudkeras.scoring import ScoreResult, score
    from fraudkeras.training import TrainedRun, resume, train

__version__ = "0.1.0"

_LAZY = {
    "FraudMLP": "fraudkeras.model",
    "load_model": "fraudkeras.model",
    "train": "fraudkeras.training",
    "resume": "fraudkeras.training",
    "compare": "fraudkeras.comparison",
    "export": "fraudkeras.exporting",
    "TrainedRun": "fraudkeras.training",
    "evaluate": "fraudkeras.evaluation",
    "retune": "fraudkeras.evaluation",
    "attributions": "fraudkeras.attribution",
    "explain": "fraudkeras.attribution",
    "permutation_importance": "fraudkeras.importance",
    "write_report": "fraudkeras.report",
    "open_artifact": "fraudkeras.artifacts",
    "score": "fraudkeras.scoring",
    "ScoreResult": "fraudkeras.scoring",
}

__all__ = [
    "BACKENDS",
    "FEATURES",
    "LABEL",
    "BackendError",
    "DataError",
    "ExportError",
    "FraudKerasError",
    "FraudMLP",
    "ModelFileError",
    "OutputError",
    "ParameterError",
    "ScoreResult",
    "Split",
    "ThresholdPolicy",
    "TrainConfig",
    "TrainedRun",
    "TrainingError",
    "Transactions",
    "attributions",
    "compare",
    "evaluate",
    "explain",
    "export",
    "load_model",
    "load_transactions",
    "open_artifact",
    "permutation_importance",
    "resume",
    "retune",
    "score",
    "split",
    "train",
    "use_backend",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fraudkeras' has no attribute {name!r}")
