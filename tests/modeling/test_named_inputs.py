"""The model's own calls (``predict``, ``evaluate``, ``fit``, calling it) take
DataFrames and dicts by column name: shuffled frames with an id column give what
the NumPy matrix in the documented order gives (predictions checked against a
float64 NumPy forward pass)."""

from __future__ import annotations

import keras
import numpy as np
import numpy_reference as reference
import pandas as pd
import polars as pl
import pytest

from fraudkeras._core.errors import DataError
from fraudkeras.data.schema import FEATURES
from helpers import make_model, numpy_model_inputs

#: measured max |predict - NumPy float64| here: ~1e-7 on every backend
ATOL = 1e-6


@pytest.fixture(scope="module")
def rows(small) -> tuple[np.ndarray, np.ndarray]:
    return small.features()[:600].astype(np.float32), small.labels()[:600]


def shuffled(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame["Class"] = y
    frame["transaction_id"] = [f"t{i}" for i in range(len(x))]
    order = np.random.default_rng(2).permutation(frame.columns.to_numpy())
    return frame[list(order)]


@pytest.mark.parametrize("form", ["pandas", "polars", "dict"])
def test_predict_and_call_match_by_name(rows, form: str) -> None:
    x, y = rows
    model = make_model(x)
    frame = shuffled(x, y)
    data = {
        "pandas": frame,
        "polars": pl.from_pandas(frame),
        "dict": {name: frame[name].to_numpy() for name in frame.columns},
    }[form]
    expected = reference.probabilities(
        reference.weights_of(model), numpy_model_inputs(model.features, x)
    )
    got = model.predict(data, verbose=0).reshape(-1)
    called = keras.ops.convert_to_numpy(model(data)).reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(called, expected, rtol=0, atol=ATOL)


def test_evaluate_and_fit_match_by_name(rows) -> None:
    x, y = rows
    frame = shuffled(x, y)
    by_name, by_order = make_model(x, seed=3), make_model(x, seed=3)
    for model in (by_name, by_order):
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    np.testing.assert_allclose(
        by_name.evaluate(frame, frame["Class"], verbose=0, batch_size=200),
        by_order.evaluate(x, y, verbose=0, batch_size=200), rtol=1e-6,
    )  # fmt: skip
    by_name.fit(pl.from_pandas(frame), pl.Series(y), batch_size=100, epochs=1, shuffle=False,
                verbose=0, validation_data=(frame, frame["Class"]))  # fmt: skip
    by_order.fit(x, y, batch_size=100, epochs=1, shuffle=False, verbose=0)
    start = keras.ops.convert_to_numpy(make_model(x, seed=3).logit.kernel)
    moved = np.abs(keras.ops.convert_to_numpy(by_order.logit.kernel) - start).max()
    assert moved > 1e-4  # training changed the weights, so equality below means something
    for a, b in zip(by_name.get_weights(), by_order.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_missing_column_is_refused_with_its_name(rows) -> None:
    x, y = rows
    model = make_model(x)
    frame = shuffled(x, y).rename(columns={"Amount": "amount"}).drop(columns=["V9"])
    with pytest.raises(DataError, match=r"missing column\(s\) V9, Amount; .*'amount' -> 'Amount'"):
        model.predict(frame, verbose=0)
