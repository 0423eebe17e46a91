"""``fraudkeras report``: write ``RUN_DIR/report/``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras.cli.options import add_backend_option, add_data_option, open_run


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        parents=[common],
        help="write RUN_DIR/report/ (Markdown, HTML, plots), replacing the one there",
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--no-plots", action="store_true", help="tables only, no matplotlib")
    # the report is derived from the run (training writes it too): always rewritten;
    # --force is still accepted, as before
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    add_backend_option(parser, "the run's backend")
    add_data_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    folder = open_run(args.run_dir, args.backend, args.data)
    from fraudkeras.analysis.report import write_report

    written = write_report(folder, plots=not args.no_plots, force=True)
    print(f"report written to {written}")
    return 0
