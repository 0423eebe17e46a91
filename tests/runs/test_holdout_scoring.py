"""Predictions on a streamed table's validation and test, scored in one pass,
against Keras's own ``predict`` on the rows NumPy selects from the table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fraudkeras._core.errors import DataError
from fraudkeras.data.parquet_table import open_table
from fraudkeras.data.schema import FEATURES, LABEL
from fraudkeras.data.streaming import scan, split_stream, uniform_hash
from fraudkeras.modeling.model import FraudMLP
from fraudkeras.runs.scoring import streamed_predictions


@pytest.fixture(scope="module")
def model(small_frame: pl.DataFrame) -> FraudMLP:
    model = FraudMLP(hidden_units=(8,))
    model.adapt(small_frame.select(FEATURES).to_numpy().astype(np.float32))
    return model


def test_streamed_predictions_are_keras_predict_on_each_whole_part(
    shards: Path, small_frame: pl.DataFrame, model: FraudMLP
) -> None:
    found = scan(open_table(shards, chunk_rows=400), "stratified", 7)
    streamed = split_stream(found, holdout_rows=50)  # samples of ~50; scores cover all
    validation, test = streamed_predictions(model, streamed)
    u = uniform_hash(np.arange(small_frame.height), 7)
    x = small_frame.select(FEATURES).to_numpy().astype(np.float32)
    y = small_frame[LABEL].to_numpy()
    for scored, mask in ((validation, (u >= 0.7) & (u < 0.85)), (test, u >= 0.85)):
        rows = np.flatnonzero(mask)
        assert scored.rows is not None and scored.times is not None
        np.testing.assert_array_equal(scored.rows, rows)
        np.testing.assert_array_equal(scored.labels, y[rows])
        amounts = small_frame["Amount"].to_numpy()[rows]
        np.testing.assert_allclose(scored.amounts, amounts, rtol=0, atol=1e-9)  # cents
        np.testing.assert_array_equal(scored.times, small_frame["Time"].to_numpy()[rows])
        expected = model.predict(x[rows], verbose=0).reshape(-1)
        np.testing.assert_allclose(scored.probabilities, expected, rtol=2e-5, atol=1e-7)


def test_a_table_that_changed_since_the_scan_is_a_data_error(shards: Path, model: FraudMLP) -> None:
    streamed = split_stream(scan(open_table(shards, chunk_rows=700), "stratified", 7))
    for wrong in ((1, 0), (10_000, 0)):  # fewer, then more rows than were counted
        counts = {**streamed.counts, "test": wrong}
        with pytest.raises(DataError, match="changed while it was being read"):
            streamed_predictions(model, dataclasses.replace(streamed, counts=counts))
