"""A model's predictions on a run's validation and test parts, the one place
they are computed: from a part in memory, or for a streamed table in one pass
over its files that keeps only what metrics, thresholds and the report read of
each row (no features), so memory grows by 33 bytes a holdout row, not 132."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fraudkeras._core.errors import DataError
from fraudkeras.data.splits import Part
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.metrics.classification import Predictions

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP


def predictions(model: FraudMLP, part: Part) -> Predictions:
    """The model's predictions on a part held in memory."""
    from fraudkeras.modeling.model import fraud_probabilities

    probabilities = fraud_probabilities(model, part.x)
    return Predictions(part.y, probabilities, part.amounts, part.times, part.rows)


class _Filled:
    """One part's prediction arrays, allocated at the part's counted size and
    filled chunk by chunk (no list of pieces to concatenate at the end)."""

    def __init__(self, rows: int) -> None:
        self.labels = np.empty(rows, np.int8)
        self.columns = [np.empty(rows, np.float64) for _ in range(3)]
        self.rows = np.empty(rows, np.int64)
        self.at = 0

    def add(self, part: Part, probabilities: np.ndarray) -> None:
        end = self.at + len(part.y)
        if end > len(self.rows):
            raise DataError("the table changed while it was being read")
        values = (part.y, probabilities, part.amounts, part.times, part.rows)
        arrays: tuple[np.ndarray, ...] = (self.labels, *self.columns, self.rows)
        for array, value in zip(arrays, values, strict=True):
            array[self.at : end] = value
        self.at = end

    def predictions(self) -> Predictions:
        if self.at != len(self.rows):
            raise DataError("the table changed while it was being read")
        probabilities, amounts, times = self.columns
        return Predictions(self.labels, probabilities, amounts, times, self.rows)


def streamed_predictions(model: FraudMLP, streamed: StreamSplit) -> tuple[Predictions, Predictions]:
    """Validation and test predictions of a streamed table, each part whole."""
    from fraudkeras.modeling.model import fraud_probabilities

    filled = {label: _Filled(streamed.counts[label][0]) for label in ("validation", "test")}
    for label, part in streamed.holdout_chunks():
        filled[label].add(part, fraud_probabilities(model, part.x))
    return filled["validation"].predictions(), filled["test"].predictions()
