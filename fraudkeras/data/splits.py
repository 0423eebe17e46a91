"""Train / validation / test splits: the notebook's stratified 70/15/15, or by time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from fraudkeras._core.errors import DataError
from fraudkeras._core.validation import check_choice, check_int
from fraudkeras.data.schema import FEATURES
from fraudkeras.data.tables import Transactions

SPLIT_KINDS = ("stratified", "time")
#: The notebook's ``test_size=0.3`` (spelled as a literal: 1 - 0.7 is 0.30000000000000004,
#: which would move one row at sizes such as 3,000).
HOLDOUT_FRACTION = 0.3
_TIME_COLUMN = FEATURES.index("Time")
_AMOUNT_COLUMN = FEATURES.index("Amount")


@dataclass(frozen=True)
class Part:
    """One split: raw float32 features (model input), 0/1 labels, and each row's
    position in the source table (so a report can point back at a transaction)."""

    x: np.ndarray
    y: np.ndarray
    rows: np.ndarray

    @property
    def amounts(self) -> np.ndarray:
        """Each transaction's ``Amount`` (what a missed fraud costs), to the cent:
        amounts up to 25,691.16 are exact in float32 to 0.002."""
        return np.round(self.x[:, _AMOUNT_COLUMN].astype(np.float64), 2)

    @property
    def times(self) -> np.ndarray:
        """Each transaction's ``Time`` (seconds; whole seconds are exact in float32
        up to 2**24, 194 days)."""
        return self.x[:, _TIME_COLUMN].astype(np.float64)

    def summary(self) -> dict[str, int]:
        return {"rows": len(self.y), "frauds": int(self.y.sum())}


@dataclass(frozen=True)
class Split:
    kind: str
    seed: int
    train: Part
    validation: Part
    test: Part

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seed": self.seed,
            **{name: getattr(self, name).summary() for name in ("train", "validation", "test")},
        }


def split(transactions: Transactions, kind: str = "stratified", seed: int = 42) -> Split:
    """Split into train (70 %), validation (15 %) and test (15 %).

    ``stratified`` gives the same rows as the notebook's two calls
    ``train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)`` and
    ``train_test_split(X_tmp, y_tmp, test_size=0.5, stratify=y_tmp, random_state=seed)``.
    ``time`` sorts by ``Time`` (stable) and cuts at the same sizes, so the model
    is tested on transactions later than any it saw. Each part must hold both
    classes, else :class:`DataError`.
    """
    check_choice("split", kind, SPLIT_KINDS)
    check_int("seed", seed, minimum=0)
    x, y = transactions.features(), transactions.labels()
    n_frauds = int(y.sum())
    if n_frauds == 0 or n_frauds == len(y):
        only = "fraud" if n_frauds else "normal"
        raise DataError(f"{transactions.origin}: only {only} transactions; both classes are needed")

    if kind == "stratified":
        train_idx, validation_idx, test_idx = _stratified_indices(y, seed, transactions.origin)
    else:
        train_idx, validation_idx, test_idx = _time_indices(x[:, _TIME_COLUMN])

    parts = {
        name: Part(x=x[idx].astype(np.float32), y=y[idx], rows=np.asarray(idx))
        for name, idx in (("train", train_idx), ("validation", validation_idx), ("test", test_idx))
    }
    for name, part in parts.items():
        frauds = int(part.y.sum())
        if frauds == 0 or frauds == len(part.y):
            raise DataError(
                f"{transactions.origin}: too few frauds to split: the {kind} {name} split "
                f"gets {frauds} of {len(part.y)} rows as fraud ({n_frauds} frauds in all)"
            )
    return Split(kind=kind, seed=seed, **parts)


def _stratified_indices(y: np.ndarray, seed: int, origin: str) -> tuple[np.ndarray, ...]:
    rows = np.arange(len(y))
    try:
        train_idx, rest_idx = train_test_split(
            rows, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=y
        )
        validation_idx, test_idx = train_test_split(
            rest_idx, test_size=0.5, random_state=seed, stratify=y[rest_idx]
        )
    except ValueError as error:  # sklearn: too few members of a class to stratify
        raise DataError(
            f"{origin}: too few frauds to split ({int(y.sum())} frauds in {len(y)} rows): {error}"
        ) from error
    return train_idx, validation_idx, test_idx


def _time_indices(time: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cut the time-ordered rows at the sizes the stratified split produces."""
    order = np.argsort(time, kind="stable")
    n = len(order)
    n_rest = math.ceil(n * HOLDOUT_FRACTION)
    n_test = math.ceil(n_rest * 0.5)
    n_train, n_validation = n - n_rest, n_rest - n_test
    return order[:n_train], order[n_train : n_train + n_validation], order[n_train + n_validation :]
