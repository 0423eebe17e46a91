"""``fraudkeras export``: SavedModel, LiteRT and ONNX files, each verified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import use_backend
from fraudkeras.cli.options import add_data_option, names
from fraudkeras.deploy.export import FORMATS
from fraudkeras.runs.layout import EXPORT_DIR, check_run_dir


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "export", parents=[common], help="export a run as SavedModel, LiteRT and ONNX, verified"
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help="comma-separated (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing export/")
    add_data_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    check_run_dir(args.run_dir)
    if "keras" not in sys.modules:  # a fresh process: export right here, under TensorFlow
        use_backend("tensorflow")
    from fraudkeras.deploy.export import export

    manifest = export(args.run_dir, names(args.formats), force=args.force, data=args.data)
    print(f"exported to {args.run_dir / EXPORT_DIR} (verified on the test split)")
    print(figures_note(manifest))
    for name, artifact in manifest["artifacts"].items():
        print(
            f"  {name:15s} {artifact['file']:27s} {artifact['size_bytes']:>9,d} B  "
            f"max |Δp| {artifact['max_abs_diff']:.1e}  PR-AUC {artifact['pr_auc']:.4f} "
            f"({artifact['pr_auc_change']:+.4f})"
        )
    return 0


def figures_note(manifest: dict[str, Any]) -> str:
    """Which numbers the table compares, so they agree with ``evaluate`` or say why not."""
    run_pr_auc = manifest.get("test_metrics", {}).get("pr_auc")
    run = f"{run_pr_auc:.4f}" if isinstance(run_pr_auc, float) else "n/a"
    return (
        f"  each artifact against the Keras model's float32 output on the test split "
        f"(PR-AUC {manifest['reference_pr_auc']:.4f}); the run's own metrics and `evaluate` "
        f"use float64 probabilities (PR-AUC {run}): float32 rounds the surest frauds to "
        f"p = 1.0, and ties there move PR-AUC"
    )
