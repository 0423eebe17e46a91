"""A run folder records its model's sha256; every command that loads the run's
model refuses another model's file in its place, with one clear error."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import only_backend, run_cli

pytestmark = only_backend("jax")  # checksums do not depend on the backend


@pytest.fixture(scope="module")
def swapped_run(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run whose model.keras is another model (other weights)."""
    from fraudkeras.modeling.model import load_model

    run = tmp_path_factory.mktemp("swapped") / "run"
    shutil.copytree(trained_run.run_dir, run)
    other = load_model(run / "model.keras")
    kernel = next(w for w in other.weights if len(w.shape) == 2)
    kernel.assign(kernel.numpy() * 1.5)
    other.save(run / "model.keras")
    return run


def test_run_folder_records_its_models_sha256(trained_run) -> None:
    run = Path(trained_run.run_dir)
    recorded = json.loads((run / "checksums.json").read_text())
    assert recorded == {
        "model.keras": hashlib.sha256((run / "model.keras").read_bytes()).hexdigest()
    }


def test_commands_refuse_another_model_in_the_run_folder(swapped_run: Path, small_parquet) -> None:
    from fraudkeras._core.errors import ModelFileError
    from fraudkeras.analysis.drift import drift
    from fraudkeras.runs.folder import RunFolder

    result = run_cli("evaluate", str(swapped_run))
    assert result.returncode == 5, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert (
        len(errors) == 1 and "checksum mismatch" in errors[0] and "Traceback" not in result.stderr
    )
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        drift(swapped_run, small_parquet)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        _ = RunFolder(swapped_run).model
