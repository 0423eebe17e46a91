"""The transaction table's schema, and the one check every input goes through."""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from fraudkeras._core.errors import DataError

#: how polars renames a column repeated in a CSV header (``V3_duplicated_0``)
CSV_DUPLICATE = re.compile(r"^(.+)_duplicated_\d+$")

#: Model inputs, in the order every model and exported artifact expects them.
FEATURES: tuple[str, ...] = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")
#: :data:`FEATURES` as a list, the public name: ``pandas_frame[FEATURES]`` needs a list
#: (pandas reads a tuple as one key), and a copy keeps the package's own tuple intact.
FEATURE_COLUMNS: list[str] = list(FEATURES)
#: The label column: 1 = fraud, 0 = normal.
LABEL = "Class"
N_FEATURES = len(FEATURES)

_SHOWN = 5  # how many offending names or values an error message lists


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def validate_frame(frame: pl.DataFrame, *, source: str, require_label: bool = True) -> pl.DataFrame:
    """Check ``frame`` against the schema and return its schema columns, found by
    name in any order (other columns are left out), with canonical dtypes.

    Features come back as Float64 and the label (when present) as Int8. The
    label is optional only when ``require_label`` is false (scoring new data);
    there it is passed through, checked, so callers can report metrics.
    Raises :class:`DataError` naming the first kind of problem found and every
    column it affects.
    """
    columns = list(frame.columns)
    expected = [*FEATURES, LABEL] if require_label or LABEL in columns else list(FEATURES)

    missing = [c for c in expected if c not in columns]
    if missing:
        raise missing_columns(missing, columns, source=source)
    renamed = (CSV_DUPLICATE.match(c) for c in columns)  # polars renames a CSV's repeats
    repeated = sorted(
        {c for c in columns if columns.count(c) > 1}
        | {m.group(1) for m in renamed if m and m.group(1) in expected}
    )
    if repeated:
        raise DataError(f"{source}: repeated column(s) {_names(repeated)}")
    # by name, in any order; other columns (IDs, merchants...) are not the model's
    frame = frame.select(expected)
    if frame.height == 0:
        raise DataError(f"{source}: no rows (header only or empty table)")

    if LABEL in columns:
        frame = frame.with_columns(_label_column(frame[LABEL], source))

    non_numeric = [c for c in FEATURES if not frame.schema[c].is_numeric()]
    if non_numeric:
        kinds = ", ".join(f"{c} ({frame.schema[c]})" for c in non_numeric[:_SHOWN])
        raise DataError(f"{source}: non-numeric feature column(s) {kinds}")

    features = frame.select(pl.col(FEATURES).cast(pl.Float64))
    bad_counts = features.select(
        (pl.col(c).is_nan() | pl.col(c).is_infinite() | pl.col(c).is_null()).sum() for c in FEATURES
    ).row(0)
    bad = [f"{c}: {n}" for c, n in zip(FEATURES, bad_counts, strict=True) if n]
    if bad:
        raise DataError(f"{source}: missing, NaN or infinite values ({_names(bad)})")
    if LABEL in columns:
        return features.with_columns(frame[LABEL])
    return features


def missing_columns(missing: list[str], present: Iterable[str], *, source: str) -> DataError:
    """The one refusal of absent columns, naming them, with a hint when a column
    of the same name in another case (or with spaces around it) is there."""
    present_by_key = {str(name).strip().lower(): str(name) for name in present}
    near = [(present_by_key[name.lower()], name) for name in missing
            if name.lower() in present_by_key]  # fmt: skip
    hint = ""
    if near:
        pairs = ", ".join(f"{found!r} -> {name!r}" for found, name in near[:_SHOWN])
        more = f" (and {len(near) - _SHOWN} more)" if len(near) > _SHOWN else ""
        hint = f"; column names are case-sensitive, only the case differs: rename {pairs}{more}"
    return DataError(f"{source}: missing column(s) {_names(missing)}{hint}")


def _label_column(labels: pl.Series, source: str) -> pl.Series:
    """Return the labels as Int8, accepting 0/1 as integers, floats or the strings "0"/"1"."""
    if labels.null_count():
        raise DataError(f"{source}: {labels.null_count()} missing value(s) in {LABEL}")
    if labels.dtype == pl.String:
        values = labels.unique().sort().to_list()
        if not set(values) <= {"0", "1"}:
            raise DataError(f"{source}: {LABEL} must hold 0 or 1, found {_names(values)}")
        return labels.cast(pl.Int8)
    if not labels.dtype.is_numeric():
        raise DataError(f"{source}: {LABEL} must be numeric 0/1, got type {labels.dtype}")
    as_float = labels.cast(pl.Float64)
    outside = as_float.filter(~as_float.is_in([0.0, 1.0])).unique().sort().to_list()
    if outside:
        raise DataError(
            f"{source}: {LABEL} must hold 0 or 1, found {_names([f'{v:g}' for v in outside])}"
        )
    return labels.cast(pl.Int8)
