"""Scoring a transaction file with any artifact, in bounded memory.

The input is streamed in batches; features are found by name (see
:mod:`fraudkeras.deploy.columns`) and every other column passes through. Each
scored batch goes to a scratch Parquet part, and the parts are streamed into the
output, written to a temporary sibling and renamed when complete. Only the
probabilities and labels (9 bytes a row) are held whole, for the metrics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core import interrupts
from fraudkeras._core.errors import DataError, ModelFileError, OutputError, first_line
from fraudkeras._core.files import atomic_file, check_output_file
from fraudkeras._core.validation import check_float, check_int
from fraudkeras.analysis.drift import REFERENCE_FILE, outside_rows, read_reference
from fraudkeras.data.feature_matrix import is_table
from fraudkeras.data.schema import CSV_DUPLICATE, FEATURES, LABEL, validate_frame
from fraudkeras.data.tables import TABLE_SUFFIXES, check_table_path, read_errors
from fraudkeras.deploy.artifacts import Artifact, open_artifact
from fraudkeras.deploy.columns import (
    EXPECTED_LOSS,
    FLAG,
    PROBABILITY,
    ColumnPlan,
    check_feature_types,
    duplicates_message,
    plan_columns,
)
from fraudkeras.deploy.export import FORMATS
from fraudkeras.deploy.recorded import find_decision
from fraudkeras.metrics.classification import at_flags, ranking_metrics
from fraudkeras.metrics.decisions import Decision
from fraudkeras.runs.layout import EXPORT_DIR, MANIFEST_FILE, MODEL_FILE

log = logging.getLogger("fraudkeras")

BATCH_ROWS = 65_536
#: share of rows outside the training range above which ``score`` warns; a fresh
#: sample of the training distribution has ~0.03 % (30 features x 2 / 199,000 rows)
OUTSIDE_WARNING = 0.01
#: how errors name a table scored from memory (the ``data`` argument)
IN_MEMORY = Path("data")
_CSV_PARSE = re.compile(r"could not parse `(.*)` as dtype `f64` at column '(.+?)'")


@dataclass
class ScoreResult:
    """What ``score`` wrote, and the metrics when the input carried labels."""

    rows: int
    flagged: int
    threshold: float
    threshold_source: str
    out: Path
    metrics: dict[str, Any] | None = field(default=None)
    #: the rule that flagged the rows (its threshold is ``threshold``)
    decision: Decision = field(default_factory=Decision)
    #: the artifact that scored (a run or export folder's chosen file)
    model: Path | None = None


#: what a run or export folder is scored with, first found first: the float32 LiteRT
#: (the served artifact: no Keras or backend needed), then ONNX, then SavedModel
FOLDER_ARTIFACTS = ("litert", "onnx", "saved_model")


def resolve_model(path: Path) -> Path:
    """The artifact a ``--model`` path means: a file or SavedModel folder as it is;
    a run folder's exported float32 LiteRT when it was exported, else its ``.keras``;
    an export folder's float32 LiteRT (else ONNX, else SavedModel)."""
    if not path.is_dir() or (path / "saved_model.pb").is_file():
        return path
    if (path / MODEL_FILE).is_file():  # a run folder
        exported = path / EXPORT_DIR
        return _exported_artifact(exported) if exported.is_dir() else path / MODEL_FILE
    if (path / MANIFEST_FILE).is_file():
        return _exported_artifact(path)
    raise ModelFileError(
        f"{path}: not a model: expected a run folder (with {MODEL_FILE}), an export folder "
        f"(with {MANIFEST_FILE}), a SavedModel folder or a .keras, .tflite or .onnx file"
    )


def _exported_artifact(folder: Path) -> Path:
    for name in FOLDER_ARTIFACTS:
        if (folder / FORMATS[name]).exists():
            return folder / FORMATS[name]
    raise ModelFileError(
        f"{folder}: holds none of {', '.join(FORMATS[n] for n in FOLDER_ARTIFACTS)}"
    )


def score(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    force: bool = False,
    batch_rows: int = BATCH_ROWS,
    keep: Iterable[str] | None = None,
    id_column: str | None = None,
) -> ScoreResult:
    """Score ``data`` (a CSV or Parquet file, or in memory a pandas or polars
    DataFrame or a dict of columns) with ``model`` (``.keras``, SavedModel folder,
    ``.tflite`` or ``.onnx``, or a run or export folder: :func:`resolve_model`) and
    write its other columns beside ``fraud_probability``, ``expected_loss``
    (``p x (Amount + chargeback fee)``) and ``is_fraud``.

    The 30 features are found by name in any order. Every other column passes
    through unchanged and in order, or only ``keep``'s. ``id_column``, when
    given, must hold unique values and is always written. ``is_fraud`` is
    ``p >= threshold`` when a ``threshold`` is given, else the run's decision
    found beside the model (``metrics.json`` for a run's ``.keras``,
    ``manifest.json`` for an export: its expected-cost rule or tuned
    threshold), else ``p >= 0.5``. A
    ``Class`` column is not used for scoring; its metrics are returned.
    """
    in_memory = is_table(data)
    model_path, out_path = resolve_model(Path(model)), Path(out)
    data_path = IN_MEMORY if in_memory else Path(data)
    batch_rows = check_int("batch_rows", batch_rows, minimum=1)
    if threshold is not None:
        threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    _check_output(out_path, None if in_memory else data_path, model_path, force=force)
    if in_memory:
        scan, plan = open_frame(data, keep=keep, id_column=id_column)
    else:
        scan, plan = open_table(data_path, keep=keep, id_column=id_column)
    artifact = open_artifact(model_path)
    decision, chosen_source = find_decision(model_path, threshold)
    with _scratch_beside(out_path) as scratch:
        p, (labels, amounts), parts, outside = _score_parts(
            scan, plan, artifact, decision, scratch, batch_rows, data_path,
            find_reference(model_path), out_path,
        )  # fmt: skip
        _write_output(parts, plan, out_path, data_path)
    if outside > OUTSIDE_WARNING * len(p):
        log.warning(
            "%.1f%% of the rows of %s lie outside the training range of at least one "
            "feature: check with `fraudkeras drift`", 100 * outside / len(p), data_path,
        )  # fmt: skip
    flags = decision.flags(p, amounts)
    metrics = None
    if labels is not None:
        metrics = label_metrics(labels, p, flags, amounts, decision)
    return ScoreResult(
        rows=len(p), flagged=int(flags.sum()), threshold=decision.threshold,
        threshold_source=chosen_source, out=out_path, metrics=metrics, decision=decision,
        model=model_path,
    )  # fmt: skip


def open_table(
    path: Path, *, keep: Iterable[str] | None = None, id_column: str | None = None
) -> tuple[pl.LazyFrame, ColumnPlan]:
    """A lazy scan of ``path`` with its features read as Float64 (a CSV's types
    are inferred from the whole file, never a prefix), and its column plan.
    Column problems are raised here, naming the columns, before any row is scored."""
    suffix = check_table_path(path)
    with read_errors(path, suffix):
        if suffix == ".csv":
            header = pl.read_csv(path, n_rows=0).columns
            repeated = [m.group(1) for c in header if (m := CSV_DUPLICATE.match(c))]
            columns = [c for c in header if not CSV_DUPLICATE.match(c)] + repeated
            overrides = {name: pl.Float64 for name in FEATURES if name in header}
            scan = pl.scan_csv(path, infer_schema_length=None, schema_overrides=overrides)
        else:
            scan = pl.scan_parquet(path)
            columns = []
        schema = _schema_of(scan, path)
    plan = plan_columns(columns or list(schema.names()), source=str(path), keep=keep,
                        id_column=id_column)  # fmt: skip
    non_numeric = {c: str(t) for c, t in schema.items() if c in FEATURES and not t.is_numeric()}
    check_feature_types(non_numeric, source=str(path))
    return scan, plan


def open_frame(
    data: Any, *, keep: Iterable[str] | None = None, id_column: str | None = None
) -> tuple[pl.LazyFrame, ColumnPlan]:
    """:func:`open_table` for a table in memory: a pandas or polars DataFrame or a
    dict of columns (the same column rules, by name)."""
    if isinstance(data, pl.LazyFrame):
        frame = data.collect()
    elif isinstance(data, pl.DataFrame):
        frame = data
    elif isinstance(data, dict):
        frame = pl.DataFrame(data)
    else:  # pandas (its index is not a column)
        frame = pl.from_pandas(data)
    source = str(IN_MEMORY)
    plan = plan_columns(frame.columns, source=source, keep=keep, id_column=id_column)
    non_numeric = {
        c: str(t) for c, t in frame.schema.items() if c in FEATURES and not t.is_numeric()
    }
    check_feature_types(non_numeric, source=source)
    return frame.lazy(), plan


@contextlib.contextmanager
def _scratch_beside(out: Path) -> Iterator[Path]:
    """A scratch folder for the scored parts beside ``out``; failing to make one is
    the output's problem (a full disk, a read-only folder), not the input's."""
    try:
        scratch = tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.")
    except OSError as error:
        raise OutputError(f"{out}: cannot write ({first_line(error)})") from error
    with scratch as folder:
        yield Path(folder)


def _schema_of(scan: pl.LazyFrame, path: Path) -> pl.Schema:
    """The scan's schema, a CSV parse failure named as such."""
    try:
        return scan.collect_schema()
    except pl.exceptions.ComputeError as error:
        raise _parse_error(error, path) from error


def _parse_error(error: Exception, path: Path) -> Exception:
    found = _CSV_PARSE.search(str(error))
    if found is None:
        return error
    return DataError(f"{path}: non-numeric value {found.group(1)!r} in feature column "
                     f"{found.group(2)}")  # fmt: skip


def _score_parts(
    scan: pl.LazyFrame,
    plan: ColumnPlan,
    artifact: Artifact,
    decision: Decision,
    scratch: Path,
    batch_rows: int,
    path: Path,
    reference: dict[str, Any] | None,
    out: Path,
) -> tuple[np.ndarray, tuple[np.ndarray | None, np.ndarray], list[Path], int]:
    """Score ``scan`` batch by batch into Parquet parts under ``scratch``; also
    count the rows outside the training range (with a drift ``reference``). A part
    that cannot be written is an :class:`OutputError` naming ``out``."""
    inputs = [*FEATURES, LABEL] if plan.has_label else list(FEATURES)
    amount_column = FEATURES.index("Amount")
    probabilities: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    amounts: list[np.ndarray] = []
    parts: list[Path] = []
    outside = 0
    start = 0
    with read_errors(path, path.suffix.lower()):
        try:
            for batch in scan.collect_batches(chunk_size=batch_rows):
                if batch.height == 0:
                    continue
                interrupts.check()
                source = f"{path} (rows {start + 1}-{start + batch.height})"
                checked = validate_frame(batch.select(inputs), source=source, require_label=False)
                features = checked.select(FEATURES).to_numpy()
                p = artifact.predict(features)
                probabilities.append(p)
                if reference is not None:
                    outside += int(outside_rows(reference, features).sum())
                # a copy: a column view would keep the batch's whole feature matrix
                # alive to the end (~16 MB a batch: 1.2 GB for 2.8 M rows)
                amounts.append(features[:, amount_column].copy())
                if plan.has_label:
                    labels.append(checked[LABEL].to_numpy())
                part = scratch / f"part-{len(parts):08d}.parquet"
                amount = features[:, amount_column]
                scored = pl.DataFrame([
                    *(batch[name] for name in plan.kept),
                    pl.Series(PROBABILITY, p, dtype=pl.Float64),
                    pl.Series(FLAG, decision.flags(p, amount).astype(np.int8)),  # 0/1, like Class
                    pl.Series(EXPECTED_LOSS, decision.expected_loss(p, amount)),
                ])  # fmt: skip
                _write_part(scored, part, out)
                parts.append(part)
                start += batch.height
        except pl.exceptions.ComputeError as error:
            raise _parse_error(error, path) from error
    if start == 0:
        raise DataError(f"{path}: no rows (header only or empty table)")
    y = np.concatenate(labels).astype(np.int32) if labels else None
    money = np.concatenate(amounts)
    return np.concatenate(probabilities), (y, money), parts, outside


def _write_part(scored: pl.DataFrame, part: Path, out: Path) -> None:
    try:
        scored.write_parquet(part)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise OutputError(f"{out}: cannot write ({first_line(error)})") from error


def _write_output(parts: list[Path], plan: ColumnPlan, out: Path, data: Path) -> None:
    """Check the id column over all parts, then stream them into ``out`` atomically."""
    table = pl.scan_parquet(parts)
    if plan.id_column is not None:
        repeated = (
            table.group_by(plan.id_column).len().filter(pl.col("len") > 1)
            .head(3).collect().rows()
        )  # fmt: skip
        if repeated:
            raise DataError(duplicates_message(str(data), plan.id_column, repeated))
    try:
        with atomic_file(out) as scratch:
            if out.suffix.lower() == ".csv":
                table.sink_csv(scratch)
            else:
                table.sink_parquet(scratch, compression="zstd")
    except (OSError, pl.exceptions.PolarsError) as error:
        raise OutputError(f"{out}: cannot write ({error})") from error


def label_metrics(
    labels: np.ndarray,
    p: np.ndarray,
    flags: np.ndarray,
    amounts: np.ndarray | None,
    decision: Decision,
) -> dict[str, Any]:
    """How the scores did against a labelled file: ranking metrics, the confusion
    numbers of the alerts and, with amounts, cost and savings."""
    fee = decision.chargeback_fee
    return {
        **ranking_metrics(labels, p),
        "threshold": decision.threshold,
        **at_flags(labels, flags, amounts, decision.review_cost, fee),
    }


def find_reference(model: Path) -> dict[str, Any] | None:
    """The run's drift reference: beside a ``.keras`` file, or one folder up from an
    export (``RUN_DIR/export/``). None where there is none (older runs)."""
    for folder in (model.parent, model.parent.parent):
        if (folder / REFERENCE_FILE).is_file():
            with contextlib.suppress(ModelFileError):
                return read_reference(folder)
    return None


def _check_output(out: Path, data: Path | None, model: Path, *, force: bool) -> None:
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise OutputError(f"{out}: output must be a .csv or .parquet file")
    if model.is_dir() and out.resolve().is_relative_to(model.resolve()):
        raise OutputError(f"{out}: is inside the model folder {model}")
    check_output_file(out, force=force, inputs=(model,) if data is None else (data, model))
