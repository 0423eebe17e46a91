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

from fraudkeras._core.backend import BACKENDS, use_backend
from fraudkeras._core.errors import (
    BackendError,
    DataError,
    ExportError,
    FraudKerasError,
    ModelFileError,
    OutputError,
    ParameterError,
    TrainingError,
)
from fraudkeras._core.keras_hook import after_keras_import
from fraudkeras.data.schema import FEATURE_COLUMNS as FEATURES
from fraudkeras.data.schema import LABEL
from fraudkeras.data.splits import Split, split
from fraudkeras.data.tables import Transactions, load_transactions, sample_path
from fraudkeras.metrics.thresholds import ThresholdPolicy
from fraudkeras.runs.config import TrainConfig

if TYPE_CHECKING:
    from fraudkeras.analysis.attribution import attributions, explain
    from fraudkeras.analysis.drift import drift
    from fraudkeras.analysis.evaluation import evaluate, retune
    from fraudkeras.analysis.importance import permutation_importance
    from fraudkeras.analysis.report import write_report
    from fraudkeras.comparison import compare
    from fraudkeras.deploy.artifacts import open_artifact
    from fraudkeras.deploy.export import export
    from fraudkeras.deploy.scoring import ScoreResult, score
    from fraudkeras.modeling.model import FraudMLP, load_model
    from fraudkeras.training.train import TrainedRun, resume, train

__version__ = "0.1.0"

# plain ``keras.saving.load_model`` finds FraudMLP once Keras is imported (either order)
after_keras_import("fraudkeras.modeling.model")

_LAZY = {
    "FraudMLP": "fraudkeras.modeling.model",
    "load_model": "fraudkeras.modeling.model",
    "train": "fraudkeras.training.train",
    "resume": "fraudkeras.training.train",
    "compare": "fraudkeras.comparison",
    "export": "fraudkeras.deploy.export",
    "TrainedRun": "fraudkeras.training.train",
    "evaluate": "fraudkeras.analysis.evaluation",
    "retune": "fraudkeras.analysis.evaluation",
    "attributions": "fraudkeras.analysis.attribution",
    "explain": "fraudkeras.analysis.attribution",
    "drift": "fraudkeras.analysis.drift",
    "permutation_importance": "fraudkeras.analysis.importance",
    "write_report": "fraudkeras.analysis.report",
    "open_artifact": "fraudkeras.deploy.artifacts",
    "score": "fraudkeras.deploy.scoring",
    "ScoreResult": "fraudkeras.deploy.scoring",
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
    "drift",
    "evaluate",
    "explain",
    "export",
    "load_model",
    "load_transactions",
    "open_artifact",
    "permutation_importance",
    "resume",
    "retune",
    "sample_path",
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
