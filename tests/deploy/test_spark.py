"""Scoring on Spark, in local mode on loopback: the same probabilities
as local ``score`` row for row, every column passed through, one clear error and
nothing written for a bad schema, an empty table in, an empty table out.
Skipped where pyspark or Java is missing (``pip install 'fraudkeras[spark]'``)."""

from __future__ import annotations

import os
import runpy
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_columns import with_ids

from fraudkeras._core.errors import DataError, ModelFileError
from fraudkeras.cli import main
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.deploy.export import FORMATS
from fraudkeras.deploy.scoring import score as local_score
from helpers import REPO, only_backend

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
        reason="Spark needs Java",
    ),
    only_backend("tensorflow"),  # Spark runs the LiteRT file; the backend changes nothing
]
ID = "TransactionID"


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for the module (the CLI's getOrCreate finds it too)."""
    from fraudkeras.deploy.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def table(small_frame: pl.DataFrame, tmp_path_factory) -> tuple[pl.DataFrame, Path]:
    frame = with_ids(small_frame)
    path = tmp_path_factory.mktemp("spark") / "in.parquet"
    frame.write_parquet(path)
    return frame, path


def to_polars(df) -> pl.DataFrame:
    return pl.from_arrow(df.toArrow())  # type: ignore[return-value]


@pytest.mark.parametrize("kind", ["litert", "onnx"])
def test_spark_equals_local_score_row_for_row(spark, exported, table, tmp_path, kind) -> None:
    import fraudkeras.spark

    frame, data = table
    model = exported[0] / "export" / FORMATS[kind]
    local_score(model, data, tmp_path / "local.parquet", id_column=ID)
    local = pl.read_parquet(tmp_path / "local.parquet")

    df = spark.read.parquet(str(data)).repartition(3)  # several tasks, rows shuffled
    scored = fraudkeras.spark.score(df, model)
    assert scored.columns == [*frame.columns, "fraud_probability", "is_fraud", "expected_loss"]
    assert dict(scored.dtypes)["fraud_probability"] == "double"
    result = to_polars(scored)
    assert result.height == frame.height
    joined = local.join(result, on=ID, how="inner", suffix="_spark")
    assert joined.height == frame.height
    gap = (joined["fraud_probability"] - joined["fraud_probability_spark"]).abs().max()
    assert gap <= 1e-6, gap
    assert (joined["is_fraud"] == joined["is_fraud_spark"]).all()
    # every input column passes through unchanged
    assert result.sort(ID).select(frame.columns).equals(frame.sort(ID))


def test_cli_engine_spark_writes_what_local_score_writes(spark, exported, table, tmp_path, capsys):
    _, data = table
    model = exported[0] / "export" / FORMATS["litert"]
    out = tmp_path / "scored.parquet"
    args = ["score", "--model", str(model), "--data", str(data), "--out", str(out),
            "--engine", "spark", "--id-column", ID]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    local = ["score", "--model", str(model), "--data", str(data),
             "--out", str(tmp_path / "local.parquet"), "--id-column", ID]  # fmt: skip
    assert main(local) == 0
    local_printed = capsys.readouterr().out.replace("local.parquet", "scored.parquet")
    # the same summary, but cost and savings: Spark's driver sees only the written
    # columns, and Amount (a feature) is not written unless --keep names it
    assert [line for line in local_printed.splitlines() if not line.startswith("cost ")] == (
        printed.splitlines()
    )
    assert "scored 3,000 rows" in printed and "PR-AUC" in printed
    spark_out = pl.read_parquet(sorted(out.glob("*.parquet"))).sort(ID)
    local_out = pl.read_parquet(tmp_path / "local.parquet").sort(ID)
    assert spark_out.columns == local_out.columns == [ID, LABEL, "Merchant", "fraud_probability",
                                                      "is_fraud", "expected_loss"]  # fmt: skip
    assert np.allclose(spark_out["fraud_probability"], local_out["fraud_probability"], atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.parquet", "scored.parquet"]


def test_a_bad_schema_is_one_error_before_any_job(spark, exported, table, tmp_path, capsys):
    import fraudkeras.spark

    frame, good = table
    model = exported[0] / "export" / FORMATS["onnx"]
    data = tmp_path / "bad.parquet"
    frame.drop("V4", "V9").write_parquet(data)
    with pytest.raises(DataError, match=r"missing column\(s\) V4, V9"):
        fraudkeras.spark.score(spark.read.parquet(str(data)), model)
    frame.with_columns(pl.col("V2").cast(pl.String)).write_parquet(data)
    out = tmp_path / "out.parquet"
    args = ["score", "--model", str(model), "--data", str(data), "--out", str(out),
            "--engine", "spark"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fraudkeras: error: {data}: non-numeric feature column(s) V2 (string)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]
    with pytest.raises(ModelFileError, match=r"runs a \.tflite or \.onnx file"):
        fraudkeras.spark.score(spark.read.parquet(str(good)), exported[0] / "model.keras")


def test_nan_fails_the_job_with_one_line_and_nothing_written(spark, exported, table, tmp_path,
                                                             capsys) -> None:  # fmt: skip
    frame, _ = table
    data = tmp_path / "nan.parquet"
    frame.with_columns(frame["V5"].scatter(7, float("nan"))).write_parquet(data)
    model = exported[0] / "export" / FORMATS["litert"]
    args = ["score", "--model", str(model), "--data", str(data),
            "--out", str(tmp_path / "out.parquet"), "--engine", "spark"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fraudkeras: error: {data}: missing, NaN or infinite values (V5: 1)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.parquet"]


def test_an_empty_table_gives_an_empty_output_with_the_schema(spark, exported, table, tmp_path):
    import fraudkeras.spark

    frame, _ = table
    data = tmp_path / "empty.parquet"
    frame.head(0).write_parquet(data)
    df = spark.read.parquet(str(data))
    scored = fraudkeras.spark.score(df, exported[0] / "export" / FORMATS["onnx"], threshold=0.3)
    assert scored.count() == 0
    assert scored.columns == [*frame.columns, "fraud_probability", "is_fraud", "expected_loss"]
    assert [t for _, t in scored.dtypes][-3:] == ["double", "tinyint", "double"]
    assert FEATURES[0] in scored.columns


def test_the_documented_spark_example_scores_as_local_score(
    spark, exported, table, tmp_path
) -> None:
    """``examples/spark_scoring.py``, embedded in the Spark guide, run on the module's
    session: the Parquet folder it writes holds local ``score``'s probabilities."""
    frame, data = table
    model = exported[0] / "export" / FORMATS["litert"]
    example = runpy.run_path(str(REPO / "examples" / "spark_scoring.py"))
    example["score_table"](spark, str(model), str(data), str(tmp_path / "scored"))
    local_score(model, data, tmp_path / "local.parquet", id_column=ID)
    local = pl.read_parquet(tmp_path / "local.parquet").sort(ID)
    written = pl.read_parquet(tmp_path / "scored" / "*.parquet").sort(ID)
    assert written.columns == [*frame.columns, "fraud_probability", "is_fraud", "expected_loss"]
    np.testing.assert_allclose(
        written["fraud_probability"].to_numpy(), local["fraud_probability"].to_numpy(), atol=1e-6
    )
    assert (written["is_fraud"].to_numpy() == local["is_fraud"].to_numpy()).all()
