"""``fraudkeras evaluate``: a run's model on its test split again."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fraudkeras.cli.options import add_backend_option, open_run
from fraudkeras.metrics.tables import format_table


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "evaluate", parents=[common], help="re-evaluate a run folder on its test split"
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--data", help="data to evaluate on (default: the run's own, wherever it is now)"
    )
    add_backend_option(parser, "the run's backend")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    folder = open_run(args.run_dir, args.backend).path
    from fraudkeras.analysis.evaluation import evaluate

    metrics = evaluate(folder, data=args.data)
    if args.json:
        print(json.dumps(metrics, indent=2, allow_nan=False))
    else:
        print(f"backend {metrics['backend']} | split {metrics['split']} | run {folder}")
        print(format_table(metrics))
    return 0
