"""Argument checks in the style of scikit-learn's parameter validation: each
raises :class:`ParameterError` naming the parameter, the rule and the value."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from fraudkeras._core.errors import ParameterError


def check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum`` (and <= ``maximum``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is finite and within the given interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    number = float(value)
    above_low = number >= low if low_inclusive else number > low
    below_high = number <= high if high_inclusive else number < high
    if not (math.isfinite(number) or (high == math.inf and number == math.inf)):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ParameterError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}")
    return number


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {options}, got {value!r}")
    return str(value)
