from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.model_selection import train_test_split

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.data.schema import LABEL
from fraudkeras.data.splits import split
from fraudkeras.data.tables import Transactions


def test_stratified_split_reproduces_the_notebooks_two_calls(sample: Transactions) -> None:
    x, y = sample.features(), sample.labels()
    x_train, x_tmp, y_train, y_tmp = train_test_split(
        x, y, test_size=0.3, random_state=42, stratify=y
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_tmp, y_tmp, test_size=0.5, random_state=42, stratify=y_tmp
    )
    parts = split(sample, "stratified", seed=42)
    for part, (xs, ys) in zip(
        (parts.train, parts.validation, parts.test),
        ((x_train, y_train), (x_val, y_val), (x_test, y_test)),
        strict=True,
    ):
        np.testing.assert_array_equal(part.x, xs.astype(np.float32))
        np.testing.assert_array_equal(part.y, ys)


@pytest.mark.parametrize("kind", ["stratified", "time"])
def test_round_sizes_split_exactly_70_15_15(small: Transactions, kind: str) -> None:
    parts = split(small, kind)  # 3,000 rows
    assert [len(p.y) for p in (parts.train, parts.validation, parts.test)] == [2100, 450, 450]


def test_stratified_split_sizes_and_fraud_rates(sample: Transactions) -> None:
    parts = split(sample, "stratified", seed=0)
    sizes = [len(p.y) for p in (parts.train, parts.validation, parts.test)]
    assert sum(sizes) == sample.n_rows
    assert np.allclose(np.array(sizes) / sample.n_rows, [0.70, 0.15, 0.15], atol=1e-3)
    rates = [p.y.mean() for p in (parts.train, parts.validation, parts.test)]
    assert np.allclose(rates, sample.n_frauds / sample.n_rows, atol=1e-3)


def test_time_split_keeps_the_future_for_testing(sample: Transactions) -> None:
    parts = split(sample, "time")
    time = 0  # column index of Time
    assert parts.train.x[:, time].max() <= parts.validation.x[:, time].min()
    assert parts.validation.x[:, time].max() <= parts.test.x[:, time].min()
    stratified = split(sample, "stratified")
    assert [len(p.y) for p in (parts.train, parts.validation, parts.test)] == [
        len(p.y) for p in (stratified.train, stratified.validation, stratified.test)
    ]
    assert parts.summary()["kind"] == "time"


def test_one_class_is_rejected(small_frame: pl.DataFrame) -> None:
    only_normal = Transactions(small_frame.filter(pl.col(LABEL) == 0), source="t", origin="t")
    with pytest.raises(DataError, match="only normal transactions"):
        split(only_normal)


def test_too_few_frauds_is_rejected(small_frame: pl.DataFrame) -> None:
    frauds = small_frame.filter(pl.col(LABEL) == 1).head(2)
    few = Transactions(
        pl.concat([small_frame.filter(pl.col(LABEL) == 0), frauds]), source="t", origin="t"
    )
    with pytest.raises(DataError, match="too few frauds to split"):
        split(few, "stratified")
    with pytest.raises(DataError, match="too few frauds to split: the time"):
        split(few, "time")


def test_unknown_kind_is_a_parameter_error(sample: Transactions) -> None:
    with pytest.raises(
        ParameterError, match="split must be one of 'stratified', 'time', got 'random'"
    ):
        split(sample, "random")
