"""Per-transaction attributions: how much each raw feature moves the model's logit
away from an average transaction.

Gradients come from the active backend's own autodiff
(:meth:`fraudkeras.backends.Backend.input_gradients`) behind one function,
:func:`logit_gradients`. Two methods build on it, both relative to the baseline
of the training means (where the built-in scaler outputs about zero):

- ``integrated_gradients`` (default): the path integral of the gradient from the
  baseline to the transaction (midpoint rule, ``steps`` points). The
  attributions add up to ``logit(x) - logit(baseline)``, up to the rule's error.
- ``gradient_x_input``: ``(x - baseline) * gradient at x``; exact for a model
  that is linear around ``x``, cheaper, but blind to saturation.

Attributions are in logit units: +1 multiplies the odds of fraud by e.
Keras is imported inside the functions, so the command line can read
:data:`METHODS` before a backend is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fraudkeras._core.validation import check_choice, check_int
from fraudkeras.data.schema import FEATURES

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP

METHODS = ("integrated_gradients", "gradient_x_input")
DEFAULT_STEPS = 64
_CHUNK_ROWS = 8192  # rows per autodiff call


def attributions(
    model: FraudMLP,
    features: np.ndarray,
    *,
    method: str = "integrated_gradients",
    steps: int = DEFAULT_STEPS,
) -> np.ndarray:
    """An ``(n, 30)`` float64 array: each raw feature's push on each row's logit."""
    check_choice("method", method, METHODS)
    check_int("steps", steps, minimum=1)
    x = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURES))
    base = baseline(model)
    delta = x - base
    if method == "gradient_x_input":
        return delta * logit_gradients(model, x)
    alphas = (np.arange(steps) + 0.5) / steps  # midpoints of the straight path
    path = base + alphas[:, None, None] * delta[None, :, :]  # (steps, n, 30)
    gradients = logit_gradients(model, path.reshape(-1, len(FEATURES)))
    return delta * gradients.reshape(steps, *x.shape).mean(axis=0)


def baseline(model: FraudMLP) -> np.ndarray:
    """The reference transaction: the training means the scaler was adapted on, as a
    raw transaction (the input transform's circular mean time of day, see
    :func:`fraudkeras.modeling.features.raw_baseline`)."""
    import keras

    from fraudkeras.modeling.features import raw_baseline

    mean = keras.ops.convert_to_numpy(model.scaler.adapt_mean)
    return raw_baseline(np.asarray(mean, np.float64), model.features)


def logit_gradients(model: FraudMLP, features: np.ndarray) -> np.ndarray:
    """d logit / d raw feature for each row, as float64, through the backend's autodiff."""
    from fraudkeras.backends import current

    gradient = current().input_gradients
    x = np.asarray(features, dtype=np.float32)
    chunks = [gradient(model, x[i : i + _CHUNK_ROWS]) for i in range(0, len(x), _CHUNK_ROWS)]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros((0, len(FEATURES)))


@dataclass(frozen=True)
class Explanation:
    """One transaction's probability and the features that push it up or down."""

    probability: float
    logit: float
    baseline_logit: float
    contributions: dict[str, float]  # feature -> logit units, in FEATURES order
    values: dict[str, float]  # feature -> the raw value


def explain(
    model: FraudMLP, transaction: np.ndarray, *, method: str = "integrated_gradients"
) -> Explanation:
    """Attributions for one raw transaction (30 features in :data:`FEATURES` order)."""
    from fraudkeras.modeling.model import probability_of  # Keras: only once it is chosen

    x = np.asarray(transaction, dtype=np.float64).reshape(1, len(FEATURES))
    logits = _logits(model, np.vstack([x, baseline(model)[None, :]]))
    contributions = attributions(model, x, method=method)[0]
    return Explanation(
        probability=float(probability_of(logits[:1])[0]),
        logit=float(logits[0]),
        baseline_logit=float(logits[1]),
        contributions={f: float(c) for f, c in zip(FEATURES, contributions, strict=True)},
        values={f: float(v) for f, v in zip(FEATURES, x[0], strict=True)},
    )


def _logits(model: FraudMLP, x: np.ndarray) -> np.ndarray:
    import keras

    out = keras.ops.stop_gradient(model(np.asarray(x, dtype=np.float32), return_logits=True))
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64).reshape(-1)
