from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudkeras._core.errors import DataError
from fraudkeras.data.schema import FEATURES, LABEL, validate_frame


def frame(rows: int = 4, **overrides: object) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, object] = {name: rng.normal(size=rows) for name in FEATURES}
    data[LABEL] = [i % 2 for i in range(rows)]
    data.update(overrides)
    return pl.DataFrame(data)


def test_valid_frame_gets_canonical_dtypes() -> None:
    checked = validate_frame(frame(), source="t")
    assert checked.columns == [*FEATURES, LABEL]
    assert all(checked.schema[c] == pl.Float64 for c in FEATURES)
    assert checked.schema[LABEL] == pl.Int8


def test_integer_features_and_string_labels_are_accepted() -> None:
    # The Kaggle CSV quotes labels ("0"/"1"); OpenML ships them as strings too.
    checked = validate_frame(frame(Time=[0, 1, 2, 3], Class=["0", "1", "0", "1"]), source="t")
    assert checked[LABEL].to_list() == [0, 1, 0, 1]
    assert checked["Time"].dtype == pl.Float64


def test_missing_columns_are_named() -> None:
    with pytest.raises(DataError, match=r"t: missing column\(s\) V3, Amount"):
        validate_frame(frame().drop("V3", "Amount"), source="t")


def test_other_columns_are_left_out_and_order_is_by_name() -> None:
    good = frame()
    messy = good.with_columns(id=pl.Series([1, 2, 3, 4])).select(
        ["id", "V1", LABEL, "Time", *FEATURES[2:]]
    )
    checked = validate_frame(messy, source="t")
    assert checked.columns == [*FEATURES, LABEL]
    assert checked.equals(validate_frame(good, source="t"))


def test_label_is_optional_only_when_not_required() -> None:
    unlabeled = frame().drop(LABEL)
    assert validate_frame(unlabeled, source="t", require_label=False).columns == list(FEATURES)
    with pytest.raises(DataError, match="missing column"):
        validate_frame(unlabeled, source="t")


def test_non_numeric_feature_is_named() -> None:
    with pytest.raises(DataError, match=r"non-numeric feature column\(s\) Amount \(String\)"):
        validate_frame(frame(Amount=["1", "2", "x", "4"]), source="t")


def test_nan_and_inf_are_counted_per_column() -> None:
    bad = frame(V2=[math.nan, 1.0, math.inf, 2.0], Amount=[None, 1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"NaN or infinite values \(V2: 2, Amount: 1\)"):
        validate_frame(bad, source="t")


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        ([0, 1, 2, 1], "found 2"),
        ([0.0, 0.5, 1.0, 0.0], "found 0.5"),
        (["0", "yes", "1", "0"], "found 0, 1, yes"),
    ],
)
def test_labels_outside_0_1_are_rejected(labels: list[object], shown: str) -> None:
    with pytest.raises(DataError, match=f"Class must hold 0 or 1, {shown}"):
        validate_frame(frame(Class=labels), source="t")


def test_header_only_table_is_rejected() -> None:
    with pytest.raises(DataError, match="no rows"):
        validate_frame(frame().head(0), source="t")


@settings(max_examples=60, deadline=None)
@given(order=st.permutations([*FEATURES, LABEL]), rows=st.integers(min_value=1, max_value=6))
def test_any_column_order_gives_the_schema_order(order: list[str], rows: int) -> None:
    original = frame(rows)
    checked = validate_frame(original.select(order), source="t")
    assert checked.columns == [*FEATURES, LABEL]
    assert checked.equals(validate_frame(original, source="t"))


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 29), st.integers(0, 5), st.sampled_from([math.nan, math.inf, -math.inf])
        ),
        min_size=1,
        max_size=8,
    )
)
def test_every_non_finite_cell_is_counted(cells: list[tuple[int, int, float]]) -> None:
    values = {name: np.zeros(6) for name in FEATURES}
    for column, row, value in cells:
        values[FEATURES[column]][row] = value
    bad = {FEATURES[c]: 0 for c, _, _ in cells}
    for name in bad:
        bad[name] = int((~np.isfinite(values[name])).sum())
    data = pl.DataFrame({**values, LABEL: [0, 1, 0, 1, 0, 1]})
    with pytest.raises(DataError) as caught:
        validate_frame(data, source="t")
    expected = [f"{name}: {count}" for name, count in bad.items()]
    ordered = sorted(expected, key=lambda item: FEATURES.index(item.split(":")[0]))
    assert ", ".join(ordered[:5]) in str(caught.value)
