"""Turning request bodies into a float32 transaction matrix, or a one-line error.

Every protocol (V1 REST, V2 REST, V2 gRPC) ends here, so a wrong row length,
text where a number belongs, NaN or an empty batch is refused the same way: a
:class:`RequestError` naming the problem, which the server answers with a 4xx.
Nothing a client sends may raise anything else.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from fraudkeras._core.errors import first_line
from fraudkeras.data.schema import FEATURES, N_FEATURES
from fraudkeras.deploy.serving.errors import RequestError

#: The documented limits: a larger body is refused with 413 before it is parsed.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_TRANSACTIONS = 10_000
INPUT_NAME = "transactions"
FEATURE_SET = frozenset(FEATURES)
_ORDER = "Time, V1..V28, Amount"
_SHOWN = 5

#: JSON nested deeper than this is refused (orjson's own limit; the stdlib's
#: parser would hit Python's recursion limit just past it)
MAX_JSON_DEPTH = 1024

try:  # orjson parses a 100-row body several times faster; the stdlib is the fallback
    import orjson

    _loads: Any = orjson.loads
    _DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)

    def dumps(payload: Any) -> bytes:
        """JSON bytes of an answer (NumPy arrays included)."""
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - orjson ships with the serve extra
    _loads = json.loads
    _DECODE_ERRORS = (ValueError, RecursionError)

    def dumps(payload: Any) -> bytes:
        return json.dumps(payload, default=lambda a: a.tolist()).encode()


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; NaN and Infinity literals are refused by name."""
    if not body.strip():
        raise RequestError("empty request body: expected a JSON object")
    try:
        return _loads(body)
    except _DECODE_ERRORS as error:
        raise RequestError(_json_problem(body, error)) from None


def _json_problem(body: bytes, error: Exception) -> str:
    """Say why a body is not JSON; orjson's message does not name NaN literals."""

    def refuse(constant: str) -> float:
        raise RequestError(f"{constant} is not a number this model accepts (NaN/inf)")

    if "depth limit" in str(error):
        return f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        json.loads(body, parse_constant=refuse)
    except RequestError as named:
        return str(named)
    except RecursionError:
        return f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as detail:
        return f"malformed JSON: {first_line(detail)}"
    return f"malformed JSON: {error}"  # pragma: no cover - both parsers refuse the same bodies


def object_body(document: Any) -> dict[str, Any]:
    """The request's top level, which every protocol defines as a JSON object."""
    if not isinstance(document, dict):
        raise RequestError(f"expected a JSON object, got {_type(document)}")
    return document


def to_matrix(rows: Any, where: str) -> np.ndarray:
    """``rows`` (a list of transactions, each 30 numbers in FEATURES order, or an
    object keyed by feature name) as a checked float32 matrix."""
    if not isinstance(rows, list):
        raise RequestError(f"{where}: expected a list of transactions, got {_type(rows)}")
    check_count(len(rows), where)
    if isinstance(rows[0], dict):
        rows = [_keyed_row(row, f"{where}[{i}]") for i, row in enumerate(rows)]
    return checked(rows, where, (len(rows), N_FEATURES))


def columns_to_matrix(columns: dict[str, Any], where: str) -> np.ndarray:
    """Columnar input keyed by feature name (V1 ``inputs``): one list per feature."""
    _check_names(columns.keys(), where)
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise RequestError(f"{where}: every feature needs a list of the same length")
    (count,) = lengths
    check_count(count, where)
    matrix = checked([columns[name] for name in FEATURES], where, (N_FEATURES, count))
    return np.ascontiguousarray(matrix.T)


def check_count(count: int, where: str) -> None:
    if count == 0:
        raise RequestError(f"{where}: empty batch (no transactions)")
    if count > MAX_TRANSACTIONS:
        raise RequestError(f"{where}: {count} transactions; at most {MAX_TRANSACTIONS}", 413)


def checked(values: Any, where: str, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` as float32 of ``shape`` (flat or nested), all finite numbers."""
    array = _flat_numbers(values)
    if array is None:
        try:
            array = np.asarray(values)
        except (ValueError, TypeError):  # ragged nesting
            raise RequestError(
                f"{where}: rows of different lengths; each transaction is {N_FEATURES} "
                f"numbers ({_ORDER})"
            ) from None
        if array.dtype.kind not in "iuf":
            raise RequestError(f"{where}: {_not_numbers(array)}")
    if array.size != math.prod(shape) or (array.ndim > 1 and array.shape != shape):
        got = "x".join(str(n) for n in array.shape) or "a scalar"
        want = "x".join(str(n) for n in shape)
        raise RequestError(
            f"{where}: shape {got} does not fit {want}; each transaction is {N_FEATURES} "
            f"numbers ({_ORDER})"
        )
    matrix = array.reshape(shape).astype(np.float32)
    # one reduction: a float64 sum of float32 values cannot overflow, so it is
    # finite exactly when every value is
    if not math.isfinite(matrix.sum(dtype=np.float64)):
        bad = np.argwhere(~np.isfinite(matrix))[0]
        raise RequestError(
            f"{where}: NaN, infinite or out-of-float32-range value at position {bad.tolist()}"
        )
    return matrix


def _flat_numbers(values: Any) -> np.ndarray | None:
    """A flat list of numbers (V2's ``data``) as float32 in one conversion, or None
    for anything else, which the general checks take apart. ``sum`` refuses text,
    null and nested lists, which NumPy's float32 conversion would parse or convert;
    a list that starts with true/false is left to the general checks too."""
    if type(values) is not list or not values or type(values[0]) is bool:
        return None
    try:
        sum(values)
        return np.array(values, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):
        return None


def _keyed_row(row: Any, where: str) -> list[Any]:
    if not isinstance(row, dict):
        raise RequestError(f"{where}: mixes objects and lists; use one form for every row")
    if len(row) == 1 and INPUT_NAME in row:  # TF Serving's row of a named input
        values: list[Any] = row[INPUT_NAME]
        return values
    _check_names(row.keys(), where)
    return [row[name] for name in FEATURES]


def _check_names(names: Any, where: str) -> None:
    given = set(names)
    if given == FEATURE_SET:
        return
    unknown, missing = sorted(given - FEATURE_SET), [f for f in FEATURES if f not in given]
    parts = []
    if unknown:
        parts.append(f"unknown feature name(s) {_list(unknown)}")
    if missing:
        parts.append(f"missing feature(s) {_list(missing)}")
    raise RequestError(f"{where}: {'; '.join(parts)} (expected {_ORDER})")


def _not_numbers(array: np.ndarray) -> str:
    if array.dtype.kind == "b":
        return "true/false where numbers belong"
    flat = array.ravel() if array.dtype != object else _flatten(array.tolist())
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            return f"{_type(value)} {str(value)[:20]!r} where a number belongs"
    return "values that are not numbers"  # pragma: no cover - numpy found none above


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for part in value for item in _flatten(part)]
    return [value]


def _list(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def threshold_parameter(value: Any, where: str = "parameters.threshold") -> float:
    """A per-request decision threshold: a number in [0, 1]."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RequestError(f"{where}: expected a number in [0, 1], got text") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{where}: expected a number in [0, 1], got {_type(value)}")
    if not 0.0 <= float(value) <= 1.0:  # also refuses NaN
        raise RequestError(f"{where}: {value} is outside [0, 1]")
    return float(value)
