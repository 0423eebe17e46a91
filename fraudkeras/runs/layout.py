"""The run folder's layout: every file and folder name a run holds, in one place.

::

    RUN_DIR/
      model.keras  config.json  metrics.json  history.json  data.json
      environment.json  drift_reference.json
      report/      (fraudkeras report)
      export/      (fraudkeras export; manifest.json beside the artifacts)
    RUN_DIR.partial/   (checkpoint while training; gone once RUN_DIR is written)
"""

from __future__ import annotations

from pathlib import Path

from fraudkeras._core.errors import ModelFileError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
DATA_FILE = "data.json"
ENVIRONMENT_FILE = "environment.json"
REQUIRED_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, DATA_FILE)

EXPORT_DIR, MANIFEST_FILE = "export", "manifest.json"
REPORT_DIR = "report"
CHECKPOINT_SUFFIX = ".partial"


def checkpoint_dir(run_dir: Path) -> Path:
    """Where a run that is still training keeps its checkpoint."""
    return run_dir.with_name(run_dir.name + CHECKPOINT_SUFFIX)


def check_run_dir(run_dir: Path) -> Path:
    """Return ``run_dir`` if it holds a finished run, else raise ModelFileError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: no such run folder")
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ModelFileError(f"{run_dir}: not a finished run folder (missing {', '.join(missing)})")
    return run_dir
