"""``fraudkeras drift``: compare a new table with a run's training data.

Drift is a finding, not an error: the command exits 0 whatever it finds,
unless ``--fail-on-drift`` is given; then it exits :data:`EXIT_DRIFT` when any
feature or the score distribution is shifted (PSI above 0.25), for CI jobs and
schedulers. Errors keep their usual exit codes (1-8).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import BACKENDS, DEFAULT_BACKEND, use_backend

EXIT_DRIFT = 9


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    drift = commands.add_parser(
        "drift", parents=[common],
        help="has new data moved away from a run's training data? (PSI per feature and score)",
    )  # fmt: skip
    drift.add_argument("--model", type=Path, required=True, metavar="RUN_DIR", help="a run folder")
    drift.add_argument("--data", type=Path, required=True, help="a .csv or .parquet file")
    drift.add_argument(
        "--out", type=Path, help="folder for drift.json and drift.png (default: RUN_DIR/drift)"
    )
    drift.add_argument(
        "--fail-on-drift", action="store_true",
        help=f"exit {EXIT_DRIFT} when anything is shifted (PSI > 0.25)",
    )  # fmt: skip
    drift.add_argument("--no-plots", action="store_true", help="skip drift.png")
    drift.add_argument("--backend", choices=BACKENDS, help="scores with the run's model")


def run(args: argparse.Namespace) -> int:
    use_backend(args.backend or _configured_backend())
    from fraudkeras._core import files
    from fraudkeras._core.errors import OutputError
    from fraudkeras.analysis import drift

    out = args.out if args.out is not None else args.model / "drift"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, expected a folder for drift.json")
    report = drift.drift(args.model, args.data)
    files.write_json(out / drift.DRIFT_FILE, report)
    if not args.no_plots:
        drift.plot(report, out / drift.PLOT_FILE)
    print(drift.format_table(report))
    print(f"written to {out}")
    return EXIT_DRIFT if args.fail_on_drift and report["shifted"] else 0


def _configured_backend() -> str:
    configured = os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
    return configured if configured in BACKENDS else DEFAULT_BACKEND
