"""Scoring's column rules: features by name in any order, every other
column passed through unchanged, ``--keep``, a unique ``--id-column``, features
read as floats whatever a CSV's first rows hold, and column errors that name the
columns. Expected probabilities come from the LiteRT interpreter opened here."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_scoring import raw_runtime

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.cli import main
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.deploy.export import FORMATS
from fraudkeras.deploy.scoring import score


@pytest.fixture(scope="module")
def litert(exported) -> Path:
    return exported[0] / "export" / FORMATS["litert"]


def with_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``TransactionID`` first, a text column in the middle, the features shuffled."""
    shuffled = list(FEATURES)
    random.Random(3).shuffle(shuffled)
    ids = pl.Series("TransactionID", [f"T{i:06d}" for i in range(frame.height)])
    merchant = pl.Series("Merchant", [f"shop {i % 7}" for i in range(frame.height)])
    columns = [ids, *(frame[c] for c in shuffled[:10]), frame[LABEL], merchant]
    return pl.DataFrame([*columns, *(frame[c] for c in shuffled[10:])])


def expected(litert: Path, frame: pl.DataFrame) -> np.ndarray:
    return raw_runtime(litert, frame.select(FEATURES).to_numpy())


def test_ids_and_other_columns_pass_through_in_order(litert, small_frame, tmp_path: Path):
    frame = with_ids(small_frame)
    data, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.write_parquet(data)
    result = score(litert, data, out, batch_rows=700, id_column="TransactionID")
    scored = pl.read_parquet(out)
    assert scored.columns == [
        "TransactionID",
        LABEL,
        "Merchant",
        "fraud_probability",
        "is_fraud",
        "expected_loss",
    ]
    assert scored.select("TransactionID", LABEL, "Merchant").equals(
        frame.select("TransactionID", LABEL, "Merchant")
    )
    p = scored["fraud_probability"].to_numpy()
    assert np.allclose(p, expected(litert, small_frame), rtol=0, atol=1e-7)
    assert result.metrics is not None and result.rows == frame.height


def test_whole_amounts_in_the_first_rows_of_a_csv(litert, small_frame, tmp_path: Path):
    """``Amount`` (and ``Time``) hold whole numbers in the first 10,000+ rows, then
    ``29.99``: types inferred from a prefix would say integer."""
    frame = pl.concat([small_frame] * 4).drop(LABEL)  # 12,000 rows
    row = pl.int_range(pl.len())
    frame = frame.with_columns(
        pl.when(row < 10_500).then(pl.col("Amount").round()).otherwise(pl.lit(29.99))
        .alias("Amount"),
        pl.col("Time").round(),
    )  # fmt: skip
    as_text = frame.with_columns(
        pl.when(row < 10_500).then(pl.col("Amount").cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col("Amount").cast(pl.String)).alias("Amount"),
        pl.col("Time").cast(pl.Int64),
    )  # fmt: skip
    data, out = tmp_path / "whole.csv", tmp_path / "out.csv"
    as_text.write_csv(data)
    assert ",29.99\n" in data.read_text()[-2000:]
    score(litert, data, out, batch_rows=4096)
    scored = pl.read_csv(out)
    assert scored.columns == ["fraud_probability", "is_fraud", "expected_loss"]
    assert np.allclose(scored["fraud_probability"].to_numpy(), expected(litert, frame), atol=1e-7)


def test_keep_chooses_the_columns_and_their_order(litert, small_frame, tmp_path: Path, capsys):
    data, out = tmp_path / "in.parquet", tmp_path / "out.csv"
    frame = with_ids(small_frame)
    frame.write_parquet(data)
    args = ["score", "--model", str(litert), "--data", str(data), "--out", str(out),
            "--keep", "Merchant,V3", "--id-column", "TransactionID"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    scored = pl.read_csv(out)
    assert scored.columns == [
        "TransactionID",
        "Merchant",
        "V3",
        "fraud_probability",
        "is_fraud",
        "expected_loss",
    ]
    assert scored["V3"].to_list() == frame["V3"].to_list()
    assert "labels found" in capsys.readouterr().out  # metrics come from the input, kept or not
    with pytest.raises(DataError, match=r"no column\(s\) Shop, id to keep"):
        score(litert, data, tmp_path / "x.parquet", keep=["Shop", "Merchant", "id"])
    with pytest.raises(ParameterError, match="named twice: Merchant"):
        score(litert, data, tmp_path / "x.parquet", keep=["Merchant", "Merchant"])


def test_a_repeated_id_is_refused_and_nothing_is_written(litert, small_frame, tmp_path, capsys):
    frame = with_ids(small_frame)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2900).then(pl.lit("T000005"))
        .otherwise(pl.col("TransactionID")).alias("TransactionID")
    )  # fmt: skip
    data = tmp_path / "in.parquet"
    frame.write_parquet(data)
    args = ["score", "--model", str(litert), "--data", str(data),
            "--out", str(tmp_path / "out.parquet"), "--id-column", "TransactionID"]  # fmt: skip
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"fraudkeras: error: {data}: id column 'TransactionID' is not unique: 'T000005' (2 times)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    assert main([*args[:-1], "Merchant"]) == 3  # same rule for any column
    with pytest.raises(DataError, match="no id column 'Nope'"):
        score(litert, data, tmp_path / "out.parquet", id_column="Nope")


def test_column_problems_name_the_columns_not_rows(litert, small_frame, tmp_path: Path):
    data = tmp_path / "in.csv"
    small_frame.drop("V4", "Amount").write_csv(data)
    with pytest.raises(DataError) as caught:
        score(litert, data, tmp_path / "out.parquet", batch_rows=1000)
    assert str(caught.value) == f"{data}: missing column(s) V4, Amount"
    text = small_frame.with_columns(  # a text cell in a feature, far past any prefix
        small_frame["V3"].cast(pl.String).scatter(2500, "abc")
    )
    text.write_csv(data)
    with pytest.raises(DataError, match="non-numeric value 'abc' in feature column V3"):
        score(litert, data, tmp_path / "out.parquet", batch_rows=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
