"""What a run recorded beside an artifact: its tuned threshold and the review cost
of its threshold policy (``manifest.json`` beside an export, ``metrics.json``
beside a run's ``model.keras``). Light on imports, so a server loads it cheaply."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import FraudKerasError
from fraudkeras._core.files import read_json
from fraudkeras.metrics.decisions import Decision
from fraudkeras.metrics.thresholds import DEFAULT_REVIEW_COST, DEFAULT_THRESHOLD
from fraudkeras.runs.layout import MANIFEST_FILE, METRICS_FILE

log = logging.getLogger("fraudkeras")


def _recorded(model: Path, manifest_key: Any, metrics_key: Any) -> tuple[Any, Path] | None:
    """A value from the export manifest or the run metrics beside ``model``."""
    folder = model.parent
    for path, pick in (
        (folder / MANIFEST_FILE, manifest_key),
        (folder / METRICS_FILE, metrics_key),
    ):
        if path.is_file():
            with contextlib.suppress(KeyError, TypeError, ValueError, FraudKerasError):
                return pick(read_json(path)), path
    return None


def review_cost_beside(model: Path) -> float:
    """The review cost of the run's threshold policy (for cost and savings)."""
    found = _recorded(
        model,
        lambda m: float(m["thresholds"]["policy"]["review_cost"]),
        lambda m: float(m["threshold_policy"]["review_cost"]),
    )
    return DEFAULT_REVIEW_COST if found is None else float(found[0])


def find_decision(model: Path, threshold: float | None = None) -> tuple[Decision, str]:
    """How to flag what ``model`` scores, and where that came from: flag at
    ``threshold`` when one is given; else the run's recorded decision (an
    expected-cost rule, or its tuned threshold); else 0.5 with a warning."""
    review_cost = review_cost_beside(model)
    if threshold is not None:
        return Decision("threshold", threshold, review_cost), "given"
    chosen, source = find_threshold(model)
    found = _recorded(
        model,
        lambda m: Decision.from_dict(m["thresholds"]["decision"]),
        lambda m: Decision.from_dict(m["decision"]),
    )
    if found is not None:
        return found[0], source
    return Decision("threshold", chosen, review_cost), source


def find_threshold(model: Path) -> tuple[float, str]:
    """The tuned threshold recorded beside ``model``, and where it came from. A
    threshold above 1 is the cost policy's "flag nothing": it is honoured."""
    found = _recorded(
        model, lambda m: float(m["thresholds"]["tuned"]), lambda m: float(m["tuned_threshold"])
    )
    if found is not None and found[0] >= 0.0:
        value, path = found
        if value > 1.0:
            log.warning(
                "the run's threshold (%.6g) is above every probability: its cost policy "
                "found no alert worth the review cost, so nothing is flagged",
                value,
            )
        return value, f"tuned, from {path}"
    log.warning(
        "no run metrics or export manifest beside %s: flagging at %g (use --threshold)",
        model,
        DEFAULT_THRESHOLD,
    )
    return DEFAULT_THRESHOLD, "default"
