"""The column rules of scoring, written once for local ``score`` and for Spark.

Features are found by name, in any order, and read as float64; every other
column passes through unchanged. The rules here look only at column names and
at whether a feature's type is numeric, so they apply equally to a polars
schema and to a Spark one, before any row is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.data.schema import FEATURES, LABEL, missing_columns

PROBABILITY, FLAG = "fraud_probability", "is_fraud"
#: p x (Amount + chargeback fee): what letting the transaction pass is expected to cost
EXPECTED_LOSS = "expected_loss"
OUTPUTS = (PROBABILITY, FLAG, EXPECTED_LOSS)
_SHOWN = 5  # how many names an error message lists


def names_text(items: Sequence[str]) -> str:
    """``a, b, c (and 4 more)``: errors name the columns, but not hundreds of them."""
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """``--keep a,b`` as a tuple of names (None when the option is absent)."""
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class ColumnPlan:
    """What a scorer reads and writes, decided from the input's column names."""

    #: input columns written beside the outputs, in this order
    kept: tuple[str, ...]
    #: whether the input carries ``Class`` (checked, used for metrics, never for scoring)
    has_label: bool
    #: the column that must hold unique values, when one was named
    id_column: str | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output column, in order."""
        return (*self.kept, *OUTPUTS)


def plan_columns(
    columns: Sequence[str],
    *,
    source: str,
    keep: Iterable[str] | None = None,
    id_column: str | None = None,
    keep_features: bool = False,
) -> ColumnPlan:
    """Check ``columns`` and decide the output's columns.

    Without ``keep``, every column that is not a feature passes through, in
    input order (``keep_features`` passes the features through too, as a Spark
    DataFrame API does). ``id_column`` is always written (first, if ``keep``
    lacks it). Raises :class:`DataError` naming the offending columns.
    """
    columns = list(columns)
    duplicated = [name for name, n in Counter(columns).items() if n > 1]
    if duplicated:
        raise DataError(f"{source}: duplicated column name(s) {names_text(duplicated)}")
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        raise missing_columns(missing, columns, source=source)
    if keep is None:
        kept = [c for c in columns if keep_features or c not in FEATURES]
    else:
        kept = _chosen(list(keep), columns, source)
    if id_column is not None:
        if id_column not in columns:
            raise DataError(f"{source}: no id column {id_column!r}")
        if id_column not in kept:
            kept.insert(0, id_column)
    clashes = [name for name in kept if name in OUTPUTS]
    if clashes:
        raise DataError(
            f"{source}: input column(s) {names_text(clashes)} would clash with the output's; "
            "leave them out with --keep"
        )
    return ColumnPlan(kept=tuple(kept), has_label=LABEL in columns, id_column=id_column)


def _chosen(keep: list[str], columns: list[str], source: str) -> list[str]:
    repeated = [name for name, n in Counter(keep).items() if n > 1]
    if repeated:
        raise ParameterError(f"keep: column(s) named twice: {names_text(repeated)}")
    unknown = [name for name in keep if name not in columns]
    if unknown:
        raise DataError(f"{source}: no column(s) {names_text(unknown)} to keep")
    return keep


def check_feature_types(non_numeric: dict[str, str], *, source: str) -> None:
    """Refuse feature columns of a non-numeric type (``{name: type}``), naming them all."""
    bad = [name for name in FEATURES if name in non_numeric]
    if bad:
        kinds = ", ".join(f"{name} ({non_numeric[name]})" for name in bad[:_SHOWN])
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        raise DataError(f"{source}: non-numeric feature column(s) {kinds}{more}")


def duplicates_message(source: str, id_column: str, examples: Sequence[tuple[object, int]]) -> str:
    """The one-line refusal of an id column with repeated values."""
    shown = ", ".join(f"{value!r} ({count} times)" for value, count in examples[:3])
    return f"{source}: id column {id_column!r} is not unique: {shown}"
