from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fraudkeras._core.errors import ModelFileError, OutputError
from fraudkeras._core.files import (
    atomic_dir,
    atomic_file,
    read_json,
    remove_stale_scratch,
    write_json,
)


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


def test_read_json_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_file(target) as scratch:
        scratch.write_text('{"a": ')
        raise RuntimeError("killed mid-write")
    assert read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_outputs_get_the_umask_permissions_not_the_scratch_ones(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "f.json", {})
        with atomic_dir(tmp_path / "run"):
            pass
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755


def test_stale_scratch_of_one_target_is_removed(tmp_path: Path) -> None:
    for name in (".run.partial-abc", ".run.old-def", ".other.partial-x", "run"):
        (tmp_path / name).mkdir()
    remove_stale_scratch(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.partial-x", "run"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_while_writing_is_an_output_error_naming_the_output(tmp_path: Path) -> None:
    target = tmp_path / "run"
    refused = pytest.raises(OutputError, match=r"run: cannot write \(.*No space left on device")
    with refused, atomic_dir(target), open("/dev/full", "w") as full:  # a real ENOSPC
        full.write("x")
        full.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no scratch left either
    refused = pytest.raises(OutputError, match=r"out\.json: cannot write")
    with refused, atomic_file(tmp_path / "out.json"), open("/dev/full", "w") as full:
        full.write("x")
        full.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
