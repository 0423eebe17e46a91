"""The ``fraudkeras`` command line.

Keras is imported only after ``--backend`` is applied. Every failure ends in one
``fraudkeras: error: ...`` line on stderr and the exit code of its kind (see
:mod:`fraudkeras._core.errors`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from fraudkeras._core import files as rundir
from fraudkeras._core import interrupts
from fraudkeras._core.backend import BACKENDS, DEFAULT_BACKEND, use_backend
from fraudkeras._core.errors import FraudKerasError, ParameterError, first_line
from fraudkeras._core.validation import check_int
from fraudkeras.analysis.attribution import METHODS
from fraudkeras.cli import drift
from fraudkeras.data.class_weights import DEFAULT_STRATEGY
from fraudkeras.data.schema import LABEL
from fraudkeras.data.splits import SPLIT_KINDS
from fraudkeras.deploy.export import FORMATS
from fraudkeras.metrics.thresholds import (
    DEFAULT_REVIEW_COST,
    DEFAULT_TARGET_RECALL,
    STRATEGIES,
    ThresholdPolicy,
)
from fraudkeras.metrics.thresholds import DEFAULT_STRATEGY as DEFAULT_THRESHOLD_STRATEGY
from fraudkeras.modeling.features import TRANSFORMS
from fraudkeras.runs.config import TrainConfig

log = logging.getLogger("fraudkeras")
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument raises ParameterError (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise ParameterError(f"{self.prog}: {message}")


def _hidden_units(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,32,16, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser = _Parser(prog="fraudkeras", description=__doc__.splitlines()[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", parents=[common], help="train, evaluate and save a run")
    train.add_argument("--backend", choices=BACKENDS, help="default: $KERAS_BACKEND, else jax")
    train.add_argument(
        "--data", default="auto", help="auto, sample, openml, or a .csv/.parquet path"
    )
    train.add_argument("--split", choices=SPLIT_KINDS, default="stratified")
    train.add_argument(
        "--class-weight",
        default=DEFAULT_STRATEGY,
        help="balanced, sqrt, none, or explicit '0:W0,1:W1' (default: %(default)s)",
    )
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=42, help="initial weights and shuffling")
    train.add_argument("--split-seed", type=int, default=42, help="the stratified split's seed")
    train.add_argument("--patience", type=int, default=5, help="early-stopping patience (epochs)")
    train.add_argument("--hidden-units", type=_hidden_units, default=(64, 32, 16))
    train.add_argument(
        "--features", choices=TRANSFORMS, default=TrainConfig.features,
        help="input transform before the scaler (default: %(default)s)",
    )  # fmt: skip
    train.add_argument("--out", type=Path, help="run folder (default: runs/<time>-<backend>)")
    train.add_argument("--force", action="store_true", help="replace an existing run folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _threshold_options(train, strategy_flag="--threshold-strategy")
    train.add_argument("--no-report", action="store_true", help="skip RUN_DIR/report/")
    train.add_argument("--no-plots", action="store_true", help="a report without pictures")
    train.add_argument(
        "--resume", type=Path, metavar="RUN_DIR",
        help="finish an interrupted run from its last completed epoch (other options: as before)",
    )  # fmt: skip

    evaluate = commands.add_parser(
        "evaluate", parents=[common], help="re-evaluate a run folder on its test split"
    )
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--data", help="data to evaluate on (default: the run's own)")
    evaluate.add_argument("--backend", choices=BACKENDS, help="default: the run's backend")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")

    export = commands.add_parser(
        "export", parents=[common], help="export a run as SavedModel, LiteRT and ONNX, verified"
    )
    export.add_argument("run_dir", type=Path)
    export.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help="comma-separated (default: %(default)s)",
    )
    export.add_argument("--force", action="store_true", help="replace an existing export/")

    score = commands.add_parser(
        "score", parents=[common], help="score a CSV/Parquet file with any saved or exported model"
    )
    score.add_argument(
        "--model", type=Path, required=True,
        help="a .keras, .tflite or .onnx file, or a SavedModel folder",
    )  # fmt: skip
    score.add_argument("--data", type=Path, required=True, help="a .csv or .parquet file")
    score.add_argument("--out", type=Path, required=True, help="a .csv or .parquet file to write")
    score.add_argument(
        "--threshold", type=float, help="flag p >= T (default: the run's tuned threshold)"
    )
    score.add_argument(
        "--backend",
        choices=BACKENDS,
        help="runs a .keras model (default: $KERAS_BACKEND, else jax)",
    )
    score.add_argument("--force", action="store_true", help="replace an existing output file")

    threshold = commands.add_parser(
        "threshold", parents=[common],
        help="choose a run's decision threshold again (on validation) and record it",
    )  # fmt: skip
    threshold.add_argument("run_dir", type=Path)
    _threshold_options(threshold, strategy_flag="--strategy")
    threshold.add_argument("--backend", choices=BACKENDS, help="default: the run's backend")

    explain = commands.add_parser(
        "explain", parents=[common], help="why one transaction gets its fraud probability"
    )
    explain.add_argument("run_dir", type=Path)
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, help="a row of the run's data (0-based)")
    which.add_argument(
        "--transaction-json", metavar="JSON",
        help="a transaction as a JSON object of the 30 features (or @FILE to read one)",
    )  # fmt: skip
    explain.add_argument("--top", type=int, default=5, help="features shown each way")
    explain.add_argument("--method", choices=METHODS, default=METHODS[0])
    explain.add_argument("--backend", choices=BACKENDS, help="default: the run's backend")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")

    report = commands.add_parser(
        "report", parents=[common], help="write RUN_DIR/report/ (Markdown, HTML, plots)"
    )
    report.add_argument("run_dir", type=Path)
    report.add_argument("--no-plots", action="store_true", help="tables only, no matplotlib")
    report.add_argument("--force", action="store_true", help="replace an existing report/")
    report.add_argument("--backend", choices=BACKENDS, help="default: the run's backend")

    compare = commands.add_parser(
        "compare", parents=[common], help="train under every backend and compare"
    )
    compare.add_argument("--data", default="auto")
    compare.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    compare.add_argument("--epochs", type=int, default=10)
    compare.add_argument("--seed", type=int, default=42)
    compare.add_argument("--split", choices=SPLIT_KINDS, default="stratified")
    compare.add_argument("--class-weight", default=DEFAULT_STRATEGY)
    compare.add_argument("--batch-size", type=int, default=256)
    compare.add_argument("--out", type=Path, required=True, help="folder for compare.json/.md")
    compare.add_argument("--force", action="store_true", help="replace an existing folder")
    compare.add_argument("--no-plots", action="store_true", help="no compare.png")
    drift.add_parser(commands, common)
    return parser


def _threshold_options(parser: argparse.ArgumentParser, *, strategy_flag: str) -> None:
    parser.add_argument(
        strategy_flag, dest="strategy", choices=STRATEGIES, default=DEFAULT_THRESHOLD_STRATEGY,
        help="f1: max F1; recall: fewest alerts reaching --target-recall; cost: lowest "
        "missed amount + --review-cost per false alarm (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--target-recall", type=float, default=DEFAULT_TARGET_RECALL)
    parser.add_argument(
        "--review-cost", type=float, default=DEFAULT_REVIEW_COST,
        help="what checking one false alarm costs, in Amount's currency (default: %(default)s)",
    )  # fmt: skip


def _default_backend() -> str:
    configured = os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
    return configured if configured in BACKENDS else DEFAULT_BACKEND


def _train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    backend = use_backend(args.backend or _default_backend())
    from fraudkeras.training.train import train

    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{backend}"
    with _resume_hint(out):
        run = train(
            args.data,
            out=out,
            force=args.force,
            verbose=0 if args.quiet else "auto",
            split=args.split,
            class_weight=args.class_weight,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            split_seed=args.split_seed,
            patience=args.patience,
            hidden_units=args.hidden_units,
            features=args.features,
            threshold_strategy=args.strategy,
            target_recall=args.target_recall,
            review_cost=args.review_cost,
        )
    return _report_run(run, args)


def _resume(args: argparse.Namespace) -> int:
    from fraudkeras.runs import checkpoint

    record, _ = checkpoint.load(checkpoint.checkpoint_dir(args.resume))
    use_backend(args.backend or record["backend"])
    from fraudkeras.training.train import resume

    with _resume_hint(args.resume):
        run = resume(args.resume, verbose=0 if args.quiet else "auto")
    return _report_run(run, args)


@contextlib.contextmanager
def _resume_hint(out: Path) -> Iterator[None]:
    """On Ctrl-C, say how to continue when a checkpoint exists."""
    from fraudkeras.runs.checkpoint import checkpoint_dir

    try:
        yield
    except KeyboardInterrupt:
        if checkpoint_dir(out).is_dir():
            log.info("interrupted: continue with  fraudkeras train --resume %s", out)
        raise


def _report_run(run: Any, args: argparse.Namespace) -> int:
    from fraudkeras.analysis.evaluation import format_table

    metrics = run.metrics
    print(
        f"backend {metrics['backend']} | data {run.data['origin']} | split {metrics['split']} | "
        f"class weight {metrics['class_weight']['strategy']} | {metrics['epochs_run']} epochs "
        f"(best {metrics['best_epoch']}) in {metrics['train_seconds']:.1f} s"
    )
    print(format_table(metrics))
    print(f"run saved to {run.run_dir}")
    if not args.no_report:
        from fraudkeras.analysis.report import write_report

        print(f"report written to {write_report(run.run_dir, plots=not args.no_plots)}")
    return 0


def _use_run_backend(run_dir: Path, backend: str | None) -> Path:
    """Check ``run_dir`` is a finished run and select ``backend`` or the run's own."""
    folder = rundir.check_run_dir(run_dir)
    config = rundir.read_json(folder / rundir.CONFIG_FILE)
    use_backend(backend or config.get("backend", DEFAULT_BACKEND))
    return folder


def _threshold(args: argparse.Namespace) -> int:
    policy = ThresholdPolicy(args.strategy, args.target_recall, args.review_cost)
    folder = _use_run_backend(args.run_dir, args.backend)
    from fraudkeras.analysis.evaluation import format_table, retune
    from fraudkeras.analysis.report import REPORT_DIR, write_report

    metrics = retune(folder, policy)
    print(f"threshold {metrics['tuned_threshold']:.6f} ({policy.strategy}, chosen on validation)")
    print(format_table(metrics))
    print(f"recorded in {folder / rundir.METRICS_FILE}")
    report = folder / REPORT_DIR
    if report.is_dir():  # keep the report in step with the threshold
        plots = any(report.glob("*.png"))
        print(f"report rewritten: {write_report(folder, plots=plots, force=True)}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    check_int("--top", args.top, minimum=1)
    folder = _use_run_backend(args.run_dir, args.backend)
    from fraudkeras.analysis.explain import explain_run, format_explanation

    explained = explain_run(folder, row=args.row, transaction_json=args.transaction_json,
                            method=args.method)  # fmt: skip
    if args.json:
        print(json.dumps(explained, indent=2))
    else:
        print(format_explanation(explained, top=args.top))
    return 0


def _report(args: argparse.Namespace) -> int:
    folder = _use_run_backend(args.run_dir, args.backend)
    from fraudkeras.analysis.report import write_report

    print(f"report written to {write_report(folder, plots=not args.no_plots, force=args.force)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    folder = _use_run_backend(args.run_dir, args.backend)
    from fraudkeras.analysis.evaluation import evaluate, format_table

    metrics = evaluate(folder, data=args.data)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"backend {metrics['backend']} | split {metrics['split']} | run {folder}")
        print(format_table(metrics))
    return 0


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (not the stream seen at setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _configure_logging() -> None:
    """Our own messages on stderr; other libraries' loggers stay as they were."""
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("fraudkeras: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)  # "no TPU" notices


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated option as a tuple of names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _export(args: argparse.Namespace) -> int:
    rundir.check_run_dir(args.run_dir)
    if "keras" not in sys.modules:  # a fresh process: export right here, under TensorFlow
        use_backend("tensorflow")
    from fraudkeras.deploy.export import EXPORT_DIR, export

    manifest = export(args.run_dir, _names(args.formats), force=args.force)
    print(f"exported to {args.run_dir / EXPORT_DIR} (verified on the test split)")
    for name, artifact in manifest["artifacts"].items():
        print(
            f"  {name:15s} {artifact['file']:27s} {artifact['size_bytes']:>9,d} B  "
            f"max |Δp| {artifact['max_abs_diff']:.1e}  PR-AUC {artifact['pr_auc']:.4f} "
            f"({artifact['pr_auc_change']:+.4f})"
        )
    return 0


def _score(args: argparse.Namespace) -> int:
    if args.model.suffix.lower() == ".keras":  # the only kind that needs Keras
        use_backend(args.backend or _default_backend())
    from fraudkeras.deploy.scoring import score

    result = score(args.model, args.data, args.out, threshold=args.threshold, force=args.force)
    print(
        f"scored {result.rows:,d} rows: {result.flagged:,d} flagged at threshold "
        f"{result.threshold:.4f} ({result.threshold_source}) -> {result.out}"
    )
    metrics = result.metrics
    if metrics is not None:
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
    return 0


def _compare(args: argparse.Namespace) -> int:
    from fraudkeras.comparison import COMPARE_MD, compare

    backends = _names(args.backends)
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        raise ParameterError(f"--backends: unknown backend(s) {', '.join(unknown) or '(none)'}")
    TrainConfig(
        epochs=args.epochs, seed=args.seed, split=args.split,
        class_weight=args.class_weight, batch_size=args.batch_size,
    )  # fmt: skip
    compare(
        args.data,
        out=args.out,
        backends=backends,
        force=args.force,
        plots=not args.no_plots,
        train_args=(
            "--epochs", str(args.epochs), "--seed", str(args.seed), "--split", args.split,
            "--class-weight", args.class_weight, "--batch-size", str(args.batch_size),
        ),
    )  # fmt: skip
    print((args.out / COMPARE_MD).read_text(), end="")
    return 0


_COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "export": _export,
    "score": _score,
    "compare": _compare,
    "threshold": _threshold,
    "explain": _explain,
    "report": _report,
    "drift": drift.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _configure_logging()
    interrupts.install()
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except FraudKerasError as error:
        if debug:
            traceback.print_exc()
        print(f"fraudkeras: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("fraudkeras: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: one line, not a traceback wall
        if debug:
            traceback.print_exc()
        reason = first_line(error)
        print(
            f"fraudkeras: internal error: {type(error).__name__}: {reason} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
