"""``fraudkeras threshold``: choose a run's decision threshold again."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras.cli.options import (
    THRESHOLD_FIELDS,
    add_backend_option,
    add_config_options,
    add_data_option,
    config_options,
    open_run,
)
from fraudkeras.metrics.decisions import Decision
from fraudkeras.metrics.tables import format_table
from fraudkeras.metrics.thresholds import ThresholdPolicy
from fraudkeras.runs import layout


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "threshold", parents=[common],
        help="choose a run's decision threshold again (on validation) and record it",
    )  # fmt: skip
    parser.add_argument("run_dir", type=Path)
    add_config_options(parser, THRESHOLD_FIELDS, flags={"threshold_strategy": "--strategy"})
    add_backend_option(parser, "the run's backend")
    add_data_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    given = config_options(args)
    policy = ThresholdPolicy(
        given.get("threshold_strategy", ThresholdPolicy.strategy),
        given.get("target_recall", ThresholdPolicy.target_recall),
        given.get("review_cost", ThresholdPolicy.review_cost),
        given.get("chargeback_fee", ThresholdPolicy.chargeback_fee),
    )
    folder = open_run(args.run_dir, args.backend, args.data).path
    from fraudkeras.analysis.evaluation import retune

    metrics = retune(folder, policy, data=args.data)
    print(f"threshold {metrics['tuned_threshold']:.6f} ({policy.strategy}, chosen on validation)")
    decision = Decision.from_dict(metrics["decision"])
    if decision.rule != "threshold":
        print(
            f"decision: flag where {decision.describe()} (the threshold above stands in for it "
            "where one number is needed)"
        )
    print(format_table(metrics))
    print(f"recorded in {folder / layout.METRICS_FILE}")
    if (folder / layout.REPORT_DIR).is_dir():
        print(f"report rewritten: {folder / layout.REPORT_DIR}")
    return 0
