"""``fraudkeras score``: a CSV/Parquet file scored with any saved or exported model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import default_backend, use_backend
from fraudkeras.cli.options import add_backend_option, finite_float
from fraudkeras.data.schema import LABEL
from fraudkeras.deploy.columns import parse_names


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "score", parents=[common], help="score a CSV/Parquet file with any saved or exported model"
    )
    parser.add_argument(
        "--model", type=Path, required=True,
        help="a run folder (its float32 LiteRT when exported, else its .keras), an export "
        "folder, a .keras, .tflite or .onnx file, or a SavedModel folder",
    )  # fmt: skip
    parser.add_argument("--data", type=Path, required=True, help="a .csv or .parquet file")
    parser.add_argument("--out", type=Path, required=True, help="a .csv or .parquet file to write")
    parser.add_argument(
        "--threshold", type=finite_float, help="flag p >= T (default: the run's tuned threshold)"
    )
    add_backend_option(parser, "$KERAS_BACKEND, else jax (only a .keras model needs one)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--keep", metavar="COLS",
        help="comma-separated input columns to write (default: every non-feature column)",
    )  # fmt: skip
    parser.add_argument("--id-column", metavar="COL", help="a column that must be unique; kept")
    parser.add_argument(
        "--engine", choices=("local", "spark"), default="local",
        help="spark: Parquet file/folder in and a Parquet folder out, on Spark",
    )  # fmt: skip
    parser.add_argument("--spark-master", default="local[2]", help="with --engine spark")
    return parser


def run(args: argparse.Namespace) -> int:
    from fraudkeras.deploy.artifacts import kind_of
    from fraudkeras.deploy.scoring import resolve_model

    args.model = resolve_model(args.model)
    if args.model.suffix.lower() == ".keras":  # the only kind that needs Keras
        use_backend(args.backend or default_backend())
    print(f"scoring with {args.model} ({kind_of(args.model).replace('_', ' ')})")
    keep = parse_names(args.keep)
    if args.engine == "spark":
        from fraudkeras.deploy.spark import score_files

        result = score_files(
            args.model, args.data, args.out, master=args.spark_master,
            threshold=args.threshold, force=args.force, keep=keep, id_column=args.id_column,
        )  # fmt: skip
    else:
        from fraudkeras.deploy.scoring import score

        result = score(
            args.model, args.data, args.out, threshold=args.threshold,
            force=args.force, keep=keep, id_column=args.id_column,
        )  # fmt: skip
    rule = result.decision
    how = (
        f"at threshold {result.threshold:.4f}"
        if rule.rule == "threshold"
        else f"where {rule.describe()}"
    )
    print(
        f"scored {result.rows:,d} rows: {result.flagged:,d} flagged {how} "
        f"({result.threshold_source}) -> {result.out}"
    )
    print_label_metrics(result.metrics)
    return 0


def print_label_metrics(metrics: dict[str, Any] | None) -> None:
    """When the scored file had labels: how the model did on them."""
    if metrics is None:
        return
    aucs = (
        f"PR-AUC {metrics['pr_auc']:.4f} | ROC-AUC {metrics['roc_auc']:.4f}"
        if metrics["pr_auc"] is not None
        else "PR-AUC and ROC-AUC undefined (one class only)"
    )
    print(
        f"labels found ({LABEL}, not used for scoring): {metrics['frauds']:,d} frauds | "
        f"{aucs} | precision {metrics['precision']:.4f} | recall {metrics['recall']:.4f} "
        f"| F1 {metrics['f1']:.4f}"
    )
    if "cost" in metrics:
        print(
            f"cost {metrics['cost']:,.2f} (missed fraud amount "
            f"{metrics['missed_fraud_amount']:,.2f} + false alarms "
            f"{metrics['false_alarm_cost']:,.2f}) | savings vs flagging nothing "
            f"{metrics['savings']:,.2f}"
        )
