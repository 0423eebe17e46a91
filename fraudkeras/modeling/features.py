"""The input transform in front of the scaler: raw transactions (30 columns in
:data:`FEATURES` order) -> what the network sees.

``Time`` counts seconds from an unknown origin, so every transaction a deployed
model scores lies past its training data; fed in as is, a model trained on two
days stops flagging fraud within a week. ``time_of_day`` keeps only
the position within the day, as sine and cosine of the daily angle, so 23:59
and 00:00 are neighbours and a shift by whole days changes nothing.

Written once in ``keras.ops`` (:func:`apply`) so every backend and every export
computes it, with a NumPy twin (:func:`apply_numpy`) for code that must not
import Keras (drift, scoring). Both avoid constants a float16 LiteRT file cannot
hold: 86,400 exceeds float16's 65,504, so ``Time mod 86,400`` is computed as
``128 * ((Time / 128) mod 675)``; dividing by a power of two is exact in
float32, and so is the rest (see :data:`_DAY_STEPS`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fraudkeras._core.errors import ParameterError
from fraudkeras.data.schema import FEATURES

RAW, TIME_OF_DAY, TIME_OF_DAY_LOG_AMOUNT = "raw", "time_of_day", "time_of_day_log_amount"
#: ``raw`` is what models saved before the transform existed do (their config has no field)
TRANSFORMS = (RAW, TIME_OF_DAY, TIME_OF_DAY_LOG_AMOUNT)
LEGACY_TRANSFORM = RAW
#: The key of a batch whose rows went through ``FraudMLP.prepare`` already
#: (``{PREPARED: rows}``): training tables are transformed and scaled once, not at every step.
PREPARED = "prepared"
SECONDS_PER_DAY = 86_400
#: 86,400 = 128 x 675: Time / 128 is exact in float32, and (Time / 128) mod 675 is an
#: exact integer for whole-second times up to 2**31 s; both constants fit float16.
_TIME_STEP, _DAY_STEPS = 128.0, 675.0
_ANGLE_PER_STEP = 2.0 * math.pi / _DAY_STEPS


def check_transform(name: str) -> str:
    if name not in TRANSFORMS:
        raise ParameterError(f"features must be one of {', '.join(TRANSFORMS)}, got {name!r}")
    return name


def output_names(transform: str) -> tuple[str, ...]:
    """The columns the transform produces, in order (what the scaler standardizes)."""
    check_transform(transform)
    if transform == RAW:
        return FEATURES
    amount = "log1p_Amount" if transform == TIME_OF_DAY_LOG_AMOUNT else "Amount"
    return ("time_sin", "time_cos", *FEATURES[1:-1], amount)


def apply(inputs: Any, transform: str) -> Any:
    """The transform in ``keras.ops`` (float32): built-in LiteRT ops only
    (SPLIT_V, MUL, FLOOR_MOD, SIN, COS, RELU, ADD, LOG, CONCATENATION)."""
    from keras import ops

    x = ops.cast(inputs, "float32")
    if transform == RAW:
        return x
    # One SPLIT_V rather than a slice per part: the int8 LiteRT file stays under 12 KiB.
    last = len(FEATURES) - 1
    time, *rest = ops.split(x, [1, last] if transform == TIME_OF_DAY_LOG_AMOUNT else [1], axis=-1)
    steps = ops.mod(time * (1.0 / _TIME_STEP), _DAY_STEPS)  # in [0, 675): 128-s units
    angle = steps * _ANGLE_PER_STEP
    if transform == TIME_OF_DAY_LOG_AMOUNT:
        rest[-1] = ops.log(ops.relu(rest[-1]) + 1.0)  # relu: gradient 0 at 0 on every backend
    return ops.concatenate([ops.sin(angle), ops.cos(angle), *rest], axis=-1)


def apply_numpy(features: np.ndarray, transform: str) -> np.ndarray:
    """The same transform in NumPy float64, from float32 inputs (as the model gets them)."""
    check_transform(transform)
    if transform == RAW:  # as before the transform existed: float64 of the given values
        return np.asarray(features, dtype=np.float64)
    x = np.asarray(features, dtype=np.float32).astype(np.float64)
    angle = np.mod(x[:, :1] / _TIME_STEP, _DAY_STEPS) * _ANGLE_PER_STEP
    amount = x[:, -1:]
    if transform == TIME_OF_DAY_LOG_AMOUNT:
        amount = np.log1p(np.maximum(amount, 0.0))
    return np.concatenate([np.sin(angle), np.cos(angle), x[:, 1:-1], amount], axis=1)


def raw_baseline(mean: np.ndarray, transform: str) -> np.ndarray:
    """A raw transaction standing for the transformed training mean ``mean`` (the
    attribution baseline): ``Time`` at the circular mean of the daily angle and
    ``Amount`` at ``expm1`` of the mean log amount."""
    check_transform(transform)
    m = np.asarray(mean, dtype=np.float64).reshape(-1)
    if transform == RAW:
        return m
    angle = math.atan2(m[0], m[1]) % (2.0 * math.pi)
    time = angle / (2.0 * math.pi) * SECONDS_PER_DAY
    amount = math.expm1(m[-1]) if transform == TIME_OF_DAY_LOG_AMOUNT else m[-1]
    return np.array([time, *m[2:-1], amount])
