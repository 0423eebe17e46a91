from __future__ import annotations

from pathlib import Path

import pytest

from fraudkeras.errors import ModelFileError, OutputError
from fraudkeras.rundir import atomic_dir, check_run_dir, read_json


def test_atomic_dir_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with atomic_dir(target) as scratch:
        (scratch / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"


def test_failure_leaves_the_old_folder_untouched(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target, force=True) as scratch:
        (scratch / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_force_replaces_and_no_force_refuses(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with pytest.raises(OutputError, match="exists already"), atomic_dir(target):
        pass
    with atomic_dir(target, force=True) as scratch:
        (scratch / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_check_run_dir_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such run folder"):
        check_run_dir(tmp_path / "nope")
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"missing config\.json, metrics\.json, data\.json"):
        check_run_dir(tmp_path)


def test_read_json_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
