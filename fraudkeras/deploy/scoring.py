"""Scoring a transaction file with any artifact, in bounded memory.

The input is streamed in batches (each schema-checked), so its size does not
matter; only the two output columns (9 bytes a row) are held whole, and the
output file is written to a temporary sibling and renamed when complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core import files as rundir
from fraudkeras._core import interrupts
from fraudkeras._core.errors import ModelFileError, OutputError
from fraudkeras._core.validation import check_float, check_int
from fraudkeras.analysis.drift import REFERENCE_FILE, outside_rows, read_reference
from fraudkeras.analysis.evaluation import DEFAULT_THRESHOLD, at_threshold, ranking_metrics
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.data.tables import iter_batches, write_table_atomic
from fraudkeras.deploy.artifacts import open_artifact
from fraudkeras.deploy.export import MANIFEST_FILE

log = logging.getLogger("fraudkeras")

BATCH_ROWS = 65_536
PROBABILITY, FLAG = "fraud_probability", "is_fraud"
OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")
#: share of rows outside the training range above which ``score`` warns; a fresh
#: sample of the training distribution has ~0.03 % (30 features x 2 / 199,000 rows)
OUTSIDE_WARNING = 0.01


@dataclass
class ScoreResult:
    """What ``score`` wrote, and the metrics when the input carried labels."""

    rows: int
    flagged: int
    threshold: float
    threshold_source: str
    out: Path
    metrics: dict[str, Any] | None = field(default=None)


def score(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    force: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> ScoreResult:
    """Score ``data`` (CSV or Parquet) with ``model`` (``.keras``, SavedModel folder,
    ``.tflite`` or ``.onnx``) and write ``fraud_probability`` and ``is_fraud``.

    ``threshold`` defaults to the run's validation-tuned one, found beside the
    model (``metrics.json`` for a run's ``.keras``, ``manifest.json`` for an
    export), else 0.5. A ``Class`` column, if present, is not used for scoring;
    its metrics are returned.
    """
    model_path, data_path, out_path = Path(model), Path(data), Path(out)
    batch_rows = check_int("batch_rows", batch_rows, minimum=1)
    if threshold is not None:
        threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    _check_output(out_path, data_path, model_path, force=force)
    artifact = open_artifact(model_path)
    chosen, chosen_source = (
        (threshold, "given") if threshold is not None else find_threshold(model_path)
    )

    reference = find_reference(model_path)
    probabilities, labels, outside = [], [], 0
    for _, batch in iter_batches(data_path, batch_rows):
        interrupts.check()
        features = batch.select(FEATURES).to_numpy()
        probabilities.append(artifact.predict(features))
        if reference is not None:
            outside += int(outside_rows(reference, features).sum())
        if LABEL in batch.columns:
            labels.append(batch[LABEL].to_numpy())
    p = np.concatenate(probabilities)
    if outside > OUTSIDE_WARNING * len(p):
        log.warning(
            "%.1f%% of the rows of %s lie outside the training range of at least one "
            "feature: check with `fraudkeras drift`", 100 * outside / len(p), data_path,
        )  # fmt: skip
    flags = p >= chosen
    try:
        frame = pl.DataFrame({PROBABILITY: p, FLAG: flags.astype(np.int8)})  # 0/1, like Class
        write_table_atomic(frame, out_path)
    except OSError as error:
        raise OutputError(f"{out_path}: cannot write ({error})") from error

    metrics = None
    if labels and sum(len(part) for part in labels) == len(p):
        y = np.concatenate(labels).astype(np.int32)
        metrics = {**ranking_metrics(y, p), **at_threshold(y, p, chosen)}
    return ScoreResult(
        rows=len(p), flagged=int(flags.sum()), threshold=chosen,
        threshold_source=chosen_source, out=out_path, metrics=metrics,
    )  # fmt: skip


def find_threshold(model: Path) -> tuple[float, str]:
    """The tuned threshold recorded beside ``model``, and where it came from."""
    folder = model.parent
    candidates = [
        (folder / MANIFEST_FILE, lambda m: m["thresholds"]["tuned"]),
        (folder / rundir.METRICS_FILE, lambda m: m["tuned_threshold"]),
    ]
    for path, pick in candidates:
        if path.is_file():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                value = float(pick(rundir.read_json(path)))
                if 0.0 <= value <= 1.0:
                    return value, f"tuned, from {path}"
    log.warning(
        "no run metrics or export manifest beside %s: flagging at %g (use --threshold)",
        model,
        DEFAULT_THRESHOLD,
    )
    return DEFAULT_THRESHOLD, "default"


def find_reference(model: Path) -> dict[str, Any] | None:
    """The run's drift reference: beside a ``.keras`` file, or one folder up from an
    export (``RUN_DIR/export/``). None where there is none (older runs)."""
    for folder in (model.parent, model.parent.parent):
        path = folder / REFERENCE_FILE
        if path.is_file():
            with contextlib.suppress(ModelFileError):
                return read_reference(folder)
    return None


def _check_output(out: Path, data: Path, model: Path, *, force: bool) -> None:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise OutputError(f"{out}: output must be a .csv or .parquet file")
    resolved = out.resolve()
    if resolved in (data.resolve(), model.resolve()):
        raise OutputError(f"{out}: would overwrite the input")
    if model.is_dir() and resolved.is_relative_to(model.resolve()):
        raise OutputError(f"{out}: is inside the model folder {model}")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder")
    if out.exists() and not force:
        raise OutputError(f"{out}: exists already (use --force to replace it)")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such folder")
    if not os.access(out.parent, os.W_OK):
        raise OutputError(f"{out.parent}: not writable")
