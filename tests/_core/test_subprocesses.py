"""A child process's failure comes back to its parent with its own class."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from fraudkeras._core.errors import DataError
from fraudkeras._core.subprocesses import (
    ERRORS_VARIABLE,
    exit_reason,
    report_failure,
    reported_error,
)


def test_a_reported_fraudkeras_error_is_raised_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ERRORS_VARIABLE, str(tmp_path))
    report_failure(DataError("x.parquet: no such file\nmore detail"))
    (report,) = [json.loads(p.read_text()) for p in tmp_path.glob("error-*.json")]
    assert report == {"kind": "DataError", "message": "x.parquet: no such file"}
    again = reported_error(tmp_path)
    assert type(again) is DataError and str(again) == "x.parquet: no such file"


def test_other_failures_are_not_fraudkeras_errors(tmp_path: Path) -> None:
    (tmp_path / "error-1.json").write_text(json.dumps({"kind": "RuntimeError", "message": "x"}))
    assert reported_error(tmp_path) is None
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(3) == "exit status 3"
