"""Class-weight strategies for the weighted loss, computed on the training labels."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from fraudkeras._core.errors import ParameterError

WEIGHTINGS = ("balanced", "sqrt", "none")
#: Chosen by scripts/bench_quality.py on the full data (see README).
DEFAULT_WEIGHTING = "none"
_EXPLICIT = re.compile(r"^\s*0\s*:\s*(?P<normal>[^,]+),\s*1\s*:\s*(?P<fraud>[^,]+)$")


@dataclass(frozen=True)
class ClassWeights:
    """Loss weight of a normal (0) and a fraud (1) transaction."""

    normal: float
    fraud: float
    strategy: str

    def as_dict(self) -> dict[str, float | str]:
        return {"strategy": self.strategy, "normal": self.normal, "fraud": self.fraud}


def class_weights(labels: np.ndarray, strategy: str = DEFAULT_WEIGHTING) -> ClassWeights:
    """Weights for ``strategy``.

    - ``balanced``: n / (2 n_c) per class, as the notebook and scikit-learn do;
    - ``sqrt``: 1 for normal, sqrt(n_normal / n_fraud) for fraud, a milder boost;
    - ``none``: 1 and 1;
    - ``"0:W0,1:W1"``: explicit positive weights.
    """
    explicit = _EXPLICIT.match(strategy) if isinstance(strategy, str) else None
    if explicit:
        normal, fraud = (_positive(explicit[k], strategy) for k in ("normal", "fraud"))
        return ClassWeights(normal=normal, fraud=fraud, strategy="explicit")
    if strategy not in WEIGHTINGS:
        raise ParameterError(
            f"class_weight must be one of {', '.join(WEIGHTINGS)} or '0:W0,1:W1', got {strategy!r}"
        )
    if strategy == "none":
        return ClassWeights(normal=1.0, fraud=1.0, strategy=strategy)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    if counts.min() == 0:
        raise ParameterError(f"class_weight={strategy!r} needs both classes in the training labels")
    if strategy == "balanced":
        normal, fraud = compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
        return ClassWeights(normal=float(normal), fraud=float(fraud), strategy=strategy)
    return ClassWeights(normal=1.0, fraud=math.sqrt(counts[0] / counts[1]), strategy=strategy)


def _positive(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"class weights must be positive numbers, got {spec!r}")
    return value
