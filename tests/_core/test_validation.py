from __future__ import annotations

import math

import pytest

from fraudkeras._core.errors import ParameterError
from fraudkeras._core.validation import check_choice, check_float, check_int


def test_check_int() -> None:
    assert check_int("n", 3, minimum=1) == 3
    for bad, message in ((True, "integer"), (2.0, "integer"), ("3", "integer"), (0, ">= 1")):
        with pytest.raises(ParameterError, match=message):
            check_int("n", bad, minimum=1)


def test_check_float() -> None:
    assert check_float("t", 0.5, low=0, high=1) == 0.5
    assert check_float("t", 1, low=0, high=1) == 1.0
    with pytest.raises(ParameterError, match=r"t must be in \(0, 1\], got 0"):
        check_float("t", 0, low=0, high=1, low_inclusive=False)
    with pytest.raises(ParameterError, match="finite"):
        check_float("t", math.nan, low=0)
    with pytest.raises(ParameterError, match="number"):
        check_float("t", "0.5", low=0)


def test_check_choice() -> None:
    assert check_choice("c", "a", ("a", "b")) == "a"
    with pytest.raises(ParameterError, match="c must be one of 'a', 'b', got 'z'"):
        check_choice("c", "z", ("a", "b"))
