"""A user's transactions, in whatever form they come, as the model's input: the
float32 matrix of :data:`~fraudkeras.data.schema.FEATURES`, in that order.

Tables carry names, so they are matched by name: a pandas or polars DataFrame
(or LazyFrame), or a dict of columns (``{"Time": [...], "V1": [...], ...}``; a
dict of numbers is one transaction). Other columns (ids, labels, merchants) are
ignored; absent features are refused with one error naming them all. Arrays
carry no names, so a NumPy array (or anything array-like) is read as it is, its
columns in the documented order. The model, every artifact runner and ``score``
go through here, so a frame with its columns in another order gets the same
answer everywhere.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from fraudkeras._core.errors import DataError
from fraudkeras.data.schema import FEATURES, N_FEATURES, missing_columns

_SHOWN = 5  # how many offending names an error message lists


def is_table(data: Any) -> bool:
    """Whether ``data`` names its columns: a pandas or polars frame, or a mapping."""
    return isinstance(data, Mapping | pl.DataFrame | pl.LazyFrame) or _is_pandas_frame(data)


def feature_matrix(data: Any, *, source: str = "features") -> np.ndarray:
    """``data``'s features as a C-contiguous float32 ``(n, 30)`` array: a table by
    column name, anything else as an array in :data:`FEATURES` order. Raises
    :class:`DataError` for absent, repeated or non-numeric feature columns and for
    an array of another shape."""
    if _is_pandas_frame(data):
        matrix = _from_pandas(data, source)
    elif isinstance(data, pl.LazyFrame | pl.DataFrame):
        matrix = _from_polars(data, source)
    elif isinstance(data, Mapping):
        matrix = _from_mapping(data, source)
    else:
        try:
            matrix = np.asarray(data, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise DataError(f"{source}: not a numeric array ({error})") from None
    if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES:
        raise DataError(f"{source}: expected shape (n, {N_FEATURES}), got {matrix.shape}")
    return np.ascontiguousarray(matrix)


def _is_pandas_frame(data: Any) -> bool:
    pandas = sys.modules.get("pandas")  # a pandas frame exists only once pandas is imported
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _check_names(columns: list[Any], source: str) -> None:
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        raise missing_columns(missing, columns, source=source)
    repeated = sorted(name for name, n in Counter(columns).items() if n > 1 and name in FEATURES)
    if repeated:
        raise DataError(f"{source}: repeated column(s) {', '.join(repeated[:_SHOWN])}")


def _refuse_non_numeric(kinds: dict[str, str], source: str) -> None:
    if kinds:
        shown = ", ".join(f"{name} ({kind})" for name, kind in list(kinds.items())[:_SHOWN])
        raise DataError(f"{source}: non-numeric feature column(s) {shown}")


def _from_pandas(frame: Any, source: str) -> np.ndarray:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    _check_names(list(frame.columns), source)
    columns = frame[list(FEATURES)]
    _refuse_non_numeric(
        {name: str(kind) for name, kind in columns.dtypes.items()
         if not is_numeric_dtype(kind) or is_bool_dtype(kind)},
        source,
    )  # fmt: skip
    matrix: np.ndarray = columns.to_numpy(dtype=np.float32, na_value=np.nan)
    return matrix


def _from_polars(frame: pl.DataFrame | pl.LazyFrame, source: str) -> np.ndarray:
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    _check_names(list(schema.names()), source)  # polars refuses repeated names itself
    _refuse_non_numeric(
        {name: str(schema[name]) for name in FEATURES if not schema[name].is_numeric()}, source
    )
    chosen = frame.select(pl.col(FEATURES).cast(pl.Float32))
    table = chosen.collect() if isinstance(chosen, pl.LazyFrame) else chosen
    return table.to_numpy()


def _from_mapping(columns: Mapping[Any, Any], source: str) -> np.ndarray:
    _check_names(list(columns), source)
    parts = []
    for name in FEATURES:
        try:
            parts.append(np.asarray(columns[name], dtype=np.float32).reshape(-1))
        except (TypeError, ValueError):
            raise DataError(f"{source}: non-numeric feature column(s) {name}") from None
    lengths = sorted({len(part) for part in parts})
    if len(lengths) > 1:
        raise DataError(f"{source}: feature columns of different lengths ({lengths})")
    return np.stack(parts, axis=1)
