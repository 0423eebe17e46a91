"""``fraudkeras explain``: why one transaction gets its fraud probability."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fraudkeras._core.validation import check_int
from fraudkeras.analysis.attribution import METHODS
from fraudkeras.cli.options import add_backend_option, add_data_option, open_run


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain", parents=[common], help="why one transaction gets its fraud probability"
    )
    parser.add_argument("run_dir", type=Path)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, help="a row of the run's data (0-based)")
    which.add_argument(
        "--transaction-json", metavar="JSON",
        help="a transaction as a JSON object of the 30 features (or @FILE to read one)",
    )  # fmt: skip
    parser.add_argument(
        "--top", type=int, default=5,
        help="features shown each way, also with --json (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--method", choices=METHODS, default=METHODS[0])
    add_backend_option(parser, "the run's backend")
    add_data_option(parser)
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    check_int("top", args.top, minimum=1)
    folder = open_run(args.run_dir, args.backend, args.data).path
    from fraudkeras.analysis.explain import explain_run, format_explanation, with_top

    explained = explain_run(
        folder, row=args.row, transaction_json=args.transaction_json,
        method=args.method, data=args.data,
    )  # fmt: skip
    if args.json:
        print(json.dumps(with_top(explained, args.top), indent=2, allow_nan=False))
    else:
        print(format_explanation(explained, top=args.top))
    return 0
