from __future__ import annotations

from pathlib import Path

import pytest

from fraudkeras._core.errors import ModelFileError
from fraudkeras.runs.layout import check_run_dir


def test_check_run_dir_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such run folder"):
        check_run_dir(tmp_path / "nope")
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"missing config\.json, metrics\.json, data\.json"):
        check_run_dir(tmp_path)
