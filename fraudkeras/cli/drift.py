"""``fraudkeras drift``: compare a new table with a run's training data.

Drift is a finding, not an error: the command exits 0 whatever it finds,
unless ``--fail-on-drift`` is given; then it exits :data:`EXIT_DRIFT` when any
feature or the score distribution is shifted (PSI above 0.25), for CI jobs and
schedulers. Errors keep their usual exit codes (1-9).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import OutputError
from fraudkeras._core.files import write_json
from fraudkeras.cli.options import add_backend_option, open_run

EXIT_DRIFT = 10


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "drift", parents=[common],
        help="has new data moved away from a run's training data? (PSI per feature and score)",
    )  # fmt: skip
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_DIR", help="a run folder")
    parser.add_argument("--data", type=Path, required=True, help="a .csv or .parquet file")
    parser.add_argument(
        "--out", type=Path, help="folder for drift.json and drift.png (default: RUN_DIR/drift)"
    )
    parser.add_argument(
        "--fail-on-drift", action="store_true",
        help=f"exit {EXIT_DRIFT} when anything is shifted (PSI > 0.25)",
    )  # fmt: skip
    parser.add_argument("--no-plots", action="store_true", help="skip drift.png")
    parser.add_argument("--force", action="store_true", help="replace an existing drift.json")
    add_backend_option(parser, "the run's backend (it scores with the run's model)")
    return parser


def run(args: argparse.Namespace) -> int:
    open_run(args.model, args.backend)
    from fraudkeras.analysis import drift

    out = args.out if args.out is not None else args.model / "drift"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, expected a folder for drift.json")
    if (out / drift.DRIFT_FILE).exists() and not args.force:
        raise OutputError(f"{out / drift.DRIFT_FILE}: exists already (--force replaces it)")
    report = drift.drift(args.model, args.data)
    write_json(out / drift.DRIFT_FILE, report)
    if not args.no_plots:
        drift.plot(report, out / drift.PLOT_FILE)
    print(drift.format_table(report))
    print(f"written to {out}")
    return EXIT_DRIFT if args.fail_on_drift and report["shifted"] else 0
