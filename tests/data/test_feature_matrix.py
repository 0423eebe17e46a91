"""Tables matched by column name: every supported form, shuffled and with extra
columns, gives the NumPy matrix in the documented order (the independent
reference: the table's own columns picked one by one)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import fraudkeras
from fraudkeras._core.errors import DataError
from fraudkeras.data.feature_matrix import feature_matrix
from fraudkeras.data.schema import FEATURES
from helpers import only_backend

pytestmark = only_backend("jax")  # no Keras here: once per tox run is enough


@pytest.fixture(scope="module")
def canonical() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, len(FEATURES))).astype(np.float32) * 100


def shuffled_pandas(x: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame.insert(0, "transaction_id", np.arange(len(x)) + 1000)
    frame["Class"] = 0
    order = np.random.default_rng(1).permutation(frame.columns.to_numpy())
    return frame[list(order)]


def test_public_features_work_as_a_pandas_column_list(canonical: np.ndarray) -> None:
    frame = shuffled_pandas(canonical)
    picked = frame[fraudkeras.FEATURES].to_numpy()
    assert list(fraudkeras.FEATURES) == ["Time", *(f"V{i}" for i in range(1, 29)), "Amount"]
    np.testing.assert_array_equal(picked, canonical)


@pytest.mark.parametrize("form", ["pandas", "polars", "lazy", "dict", "dict-of-lists"])
def test_every_table_form_is_matched_by_name(canonical: np.ndarray, form: str) -> None:
    frame = shuffled_pandas(canonical)
    assert list(frame.columns[:31]) != list(FEATURES)  # really shuffled
    data = {
        "pandas": lambda: frame,
        "polars": lambda: pl.from_pandas(frame),
        "lazy": lambda: pl.from_pandas(frame).lazy(),
        "dict": lambda: {name: frame[name].to_numpy() for name in frame.columns},
        "dict-of-lists": lambda: {name: frame[name].tolist() for name in frame.columns},
    }[form]()
    got = feature_matrix(data)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, canonical)


def test_one_transaction_as_a_dict_of_numbers(canonical: np.ndarray) -> None:
    row = {name: float(value) for name, value in zip(FEATURES, canonical[3], strict=True)}
    np.testing.assert_array_equal(feature_matrix(dict(reversed(row.items()))), canonical[3:4])


def test_arrays_keep_the_documented_order(canonical: np.ndarray) -> None:
    np.testing.assert_array_equal(feature_matrix(canonical.astype(np.float64)), canonical)
    with pytest.raises(DataError, match=r"expected shape \(n, 30\), got \(50, 29\)"):
        feature_matrix(canonical[:, :29])


def test_missing_columns_are_named_in_one_error(canonical: np.ndarray) -> None:
    frame = shuffled_pandas(canonical).drop(columns=["V3", "Amount"])
    with pytest.raises(DataError, match=r"^features: missing column\(s\) V3, Amount$"):
        feature_matrix(frame)


def test_a_case_only_difference_gets_a_hint(canonical: np.ndarray) -> None:
    frame = pl.from_pandas(shuffled_pandas(canonical)).rename({"Time": "time", "V1": "v1"})
    with pytest.raises(DataError, match=r"missing column\(s\) Time, V1; .*only the case differs: "
                       r"rename 'time' -> 'Time', 'v1' -> 'V1'"):  # fmt: skip
        feature_matrix(frame)


def test_non_numeric_and_repeated_features_are_refused(canonical: np.ndarray) -> None:
    frame = shuffled_pandas(canonical)
    frame["V7"] = "x"
    with pytest.raises(DataError, match=r"non-numeric feature column\(s\) V7 \((object|str)"):
        feature_matrix(frame)
    repeated = pd.concat([shuffled_pandas(canonical), shuffled_pandas(canonical)[["V2"]]], axis=1)
    with pytest.raises(DataError, match=r"repeated column\(s\) V2"):
        feature_matrix(repeated)
    ragged = {name: np.zeros(3) for name in FEATURES} | {"V4": np.zeros(2)}
    with pytest.raises(DataError, match="different lengths"):
        feature_matrix(ragged)
