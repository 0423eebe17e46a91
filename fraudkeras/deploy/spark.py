"""Batch scoring on Apache Spark, where the transactions live.

:func:`score` wraps a LiteRT or ONNX artifact in ``mapInArrow``: the model's
bytes reach each executor once (a broadcast), each task opens one interpreter
and scores its Arrow batches with it. The column rules are local ``score``'s
(:mod:`fraudkeras.deploy.columns`), checked on the schema before any job runs.
pyspark is imported only here, never by ``import fraudkeras``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudkeras._core.errors import (
    BackendError,
    DataError,
    FraudKerasError,
    ModelFileError,
    OutputError,
)
from fraudkeras._core.files import check_output_file
from fraudkeras._core.validation import check_float
from fraudkeras.data.schema import FEATURES
from fraudkeras.deploy.artifacts import Artifact, kind_of, open_artifact
from fraudkeras.deploy.columns import (
    EXPECTED_LOSS,
    FLAG,
    OUTPUTS,
    PROBABILITY,
    ColumnPlan,
    check_feature_types,
    duplicates_message,
    names_text,
    plan_columns,
)
from fraudkeras.metrics.decisions import Decision

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

    from fraudkeras.deploy.scoring import ScoreResult

log = logging.getLogger("fraudkeras")
SPARK_KINDS = ("litert", "onnx")
#: quiet, loopback-only defaults for the sessions the CLI starts
SESSION_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "65536",
    "spark.sql.shuffle.partitions": "8",
}
_LOCAL_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
_OUR_ERROR = re.compile(r"fraudkeras\._core\.errors\.(DataError): (.+)")


def score(
    df: DataFrame,
    model: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    keep: Iterable[str] | None = None,
) -> DataFrame:
    """``df`` with ``fraud_probability`` (double), ``expected_loss`` (double,
    ``p x (Amount + chargeback fee)``) and ``is_fraud`` (0/1) added.

    Every input column passes through (or only ``keep``'s). ``model`` is a
    ``.tflite`` or ``.onnx`` file on the driver; ``is_fraud`` is ``p >= threshold``
    given a ``threshold``, else the run's decision recorded beside the model
    (:func:`fraudkeras.deploy.recorded.find_decision`), else ``p >= 0.5`` with a warning.
    Schema problems raise :class:`DataError` here; NaN or missing feature values
    fail the job (:func:`our_error` recovers the one-line message).
    """
    plan = _plan(df, keep=keep, id_column=None, keep_features=True, source="DataFrame")
    scored, _, _ = score_frame(df, Path(model), plan, threshold)
    return scored


def score_frame(
    df: DataFrame, model: Path, plan: ColumnPlan, threshold: float | None
) -> tuple[DataFrame, Decision, str]:
    """The lazy scored DataFrame, the decision and where that came from."""
    from fraudkeras.deploy.recorded import find_decision

    kind = kind_of(model)
    if kind not in SPARK_KINDS:
        raise ModelFileError(f"{model}: Spark scoring runs a .tflite or .onnx file, not {kind}")
    open_artifact(model)  # a damaged file fails here, on the driver, not in every task
    if threshold is not None:
        threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    chosen, source = find_decision(model, threshold)
    payload = df.sparkSession.sparkContext.broadcast(model.read_bytes())
    scorer = TaskScorer(payload, model.suffix, plan.kept, chosen)
    with warnings.catch_warnings():  # pyspark's notice about pandas 3 (mapInArrow uses none)
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        scored = df.mapInArrow(scorer, _output_schema(df, plan))
    return scored, chosen, source


def _plan(
    df: DataFrame,
    *,
    keep: Iterable[str] | None,
    id_column: str | None,
    keep_features: bool,
    source: str,
) -> ColumnPlan:
    from pyspark.sql.types import NumericType

    plan = plan_columns(df.columns, source=source, keep=keep, id_column=id_column,
                        keep_features=keep_features)  # fmt: skip
    types = {f.name: f.dataType for f in df.schema.fields}
    non_numeric = {
        name: t.simpleString() for name, t in types.items() if not isinstance(t, NumericType)
    }
    check_feature_types(non_numeric, source=source)
    return plan


def _output_schema(df: DataFrame, plan: ColumnPlan) -> Any:
    from pyspark.sql.types import ByteType, DoubleType, StructField, StructType

    fields = {f.name: f for f in df.schema.fields}
    return StructType(
        [fields[name] for name in plan.kept]
        + [
            StructField(PROBABILITY, DoubleType(), False),
            StructField(FLAG, ByteType(), False),
            StructField(EXPECTED_LOSS, DoubleType(), False),
        ]
    )


class TaskScorer:
    """What runs on the executors: one artifact per task, every batch through it."""

    def __init__(
        self, payload: Broadcast[bytes], suffix: str, kept: tuple[str, ...], decision: Decision
    ) -> None:
        self.payload, self.suffix, self.kept, self.decision = payload, suffix, kept, decision

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with tempfile.TemporaryDirectory(prefix="fraudkeras-") as folder:
            path = Path(folder) / f"model{self.suffix}"
            path.write_bytes(self.payload.value)  # the executor's copy of the broadcast
            artifact = open_artifact(path)  # once per task, not per batch
            for batch in batches:
                yield self.score_batch(batch, artifact)

    def score_batch(self, batch: pa.RecordBatch, artifact: Artifact) -> pa.RecordBatch:
        import pyarrow as pa
        import pyarrow.compute as pc

        x = np.empty((batch.num_rows, len(FEATURES)), dtype=np.float64)
        for i, name in enumerate(FEATURES):  # by name, any order, any numeric type
            x[:, i] = pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(x)
        if not finite.all():
            bad = [f"{name}: {n}" for name, n in zip(FEATURES, (~finite).sum(0), strict=True) if n]
            raise DataError(f"missing, NaN or infinite values ({names_text(bad)})")
        p = artifact.predict(x) if len(x) else np.empty(0)
        columns = [batch.column(name) for name in self.kept]
        amounts = x[:, FEATURES.index("Amount")]
        columns += [
            pa.array(p, pa.float64()),
            pa.array(self.decision.flags(p, amounts).astype(np.int8)),
            pa.array(self.decision.expected_loss(p, amounts), pa.float64()),
        ]
        return pa.RecordBatch.from_arrays(columns, names=[*self.kept, *OUTPUTS])


def our_error(error: BaseException) -> FraudKerasError | None:
    """The :class:`DataError` a Spark task raised, recovered from Spark's wrapping."""
    found = _OUR_ERROR.search(str(error))
    return DataError(found.group(2).strip()) if found else None


def spark_session(master: str) -> SparkSession:
    """A quiet session: no UI or progress bars, loopback only for local masters,
    executors on this very Python (so they find fraudkeras and its runtimes)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BackendError("Spark scoring needs pyspark: pip install 'fraudkeras[spark]'") from None
    conf = dict(SESSION_CONF)
    if master.startswith("local"):
        conf |= _LOCAL_CONF
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # what pyspark's workers run
    builder = SparkSession.builder.master(master).appName("fraudkeras")
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        with _quiet_stderr():
            session = builder.getOrCreate()
    except Exception as error:  # no Java, a bad master URL: pyspark raises its own kinds
        raise BackendError(
            f"cannot start Spark ({master}): {str(error).strip().splitlines()[0]} "
            "(Spark 4 needs Java 17 on the PATH or in JAVA_HOME)"
        ) from error
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hide the JVM's start-up notices (log4j, native-library warnings) on fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def replace_folder(scratch: Path, target: Path) -> None:
    """Move a finished output folder into place; an old one (``--force``) goes after."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(scratch, target)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def score_files(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    master: str = "local[2]",
    threshold: float | None = None,
    force: bool = False,
    keep: Iterable[str] | None = None,
    id_column: str | None = None,
) -> ScoreResult:
    """``fraudkeras score --engine spark``: a Parquet file or folder in, a Parquet
    folder out (written beside ``out`` and renamed), local ``score``'s rules."""
    model_path, data_path, out_path = Path(model), Path(data), Path(out)
    if threshold is not None:
        threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    _check_paths(model_path, data_path, out_path, force=force)
    spark = spark_session(master)
    try:
        df = spark.read.parquet(str(data_path))
    except Exception as error:  # Spark's AnalysisException and friends
        raise DataError(f"{data_path}: not a readable Parquet file or folder "
                        f"({str(error).strip().splitlines()[0]})") from error  # fmt: skip
    plan = _plan(df, keep=keep, id_column=id_column, keep_features=False, source=str(data_path))
    if id_column is not None:
        repeated = df.groupBy(id_column).count().filter("count > 1").limit(3).collect()
        if repeated:
            examples = [(row[0], int(row[1])) for row in repeated]
            raise DataError(duplicates_message(str(data_path), id_column, examples))
    scored, chosen, source = score_frame(df, model_path, plan, threshold)
    scratch = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        scored.write.parquet(str(scratch))
        replace_folder(scratch, out_path)
    except Exception as error:
        ours = our_error(error)
        if ours is not None:
            raise DataError(f"{data_path}: {ours}") from None
        if isinstance(error, OSError):
            raise OutputError(f"{out_path}: cannot write ({error})") from error
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summarize(out_path, chosen, source)


def _check_paths(model: Path, data: Path, out: Path, *, force: bool) -> None:
    if not model.is_file():
        raise ModelFileError(f"{model}: no such model file")
    if not data.exists():
        raise DataError(f"{data}: no such file or folder")
    check_output_file(out, force=force, inputs=(data, model), folder=True)


def summarize(out: Path, decision: Decision, source: str) -> ScoreResult:
    """Local ``score``'s summary, read back from the written folder (the
    probabilities and labels: 9 bytes a row on the driver)."""
    import polars as pl

    from fraudkeras.data.schema import LABEL
    from fraudkeras.deploy.scoring import ScoreResult, label_metrics

    parts = sorted(out.glob("*.parquet"))
    table = pl.scan_parquet(parts) if parts else None
    columns = table.collect_schema().names() if table is not None else []
    wanted = [PROBABILITY, FLAG, *(c for c in (LABEL, "Amount") if c in columns)]
    frame = table.select(wanted).collect() if table is not None else pl.DataFrame()
    p = frame[PROBABILITY].to_numpy() if frame.height else np.empty(0)
    flags = frame[FLAG].to_numpy().astype(bool) if frame.height else np.empty(0, bool)
    metrics = None
    if LABEL in frame.columns and frame.height:
        y = frame[LABEL].cast(pl.Int32).to_numpy()
        amounts = frame["Amount"].to_numpy() if "Amount" in frame.columns else None
        if amounts is None:  # the amounts stay on the executors unless written
            log.info("cost and savings need Amount in the output: add it with --keep")
        metrics = label_metrics(y, p, flags, amounts, decision)
    return ScoreResult(
        rows=len(p), flagged=int(flags.sum()), threshold=decision.threshold,
        threshold_source=source, out=out, metrics=metrics, decision=decision,
    )  # fmt: skip
