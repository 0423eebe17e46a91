"""``fraudkeras train``: train, evaluate and save a run (``--resume`` finishes an
interrupted one)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import default_backend, use_backend
from fraudkeras._core.devices import prepare_devices
from fraudkeras._core.errors import ParameterError
from fraudkeras._core.text import counted
from fraudkeras.cli.options import (
    add_backend_option,
    add_config_options,
    add_devices_option,
    config_options,
)
from fraudkeras.metrics.tables import format_table
from fraudkeras.runs import checkpoint
from fraudkeras.runs.config import TrainConfig

log = logging.getLogger("fraudkeras")


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "train", parents=[common], help="train, evaluate and save a run"
    )
    add_backend_option(parser, "$KERAS_BACKEND, else jax")
    parser.add_argument(
        "--data",
        help="auto (default), sample, openml, a .csv/.parquet path, or a folder/glob of Parquet "
        "files (streamed)",
    )
    parser.add_argument(
        "--stream", action="store_true",
        help="stream the training rows from Parquet (automatic for a folder/glob, and for a "
        "table too large for memory)",
    )  # fmt: skip
    parser.add_argument(
        "--stream-cache", action="store_true",
        help="streamed: keep the decoded training rows on disk (OUT.stream-cache/, ~124 bytes "
        "a row) after the first epoch, so later epochs skip Parquet decoding",
    )  # fmt: skip
    add_config_options(
        parser,
        [f.name for f in fields(TrainConfig)],
        flags={"threshold_strategy": "--threshold-strategy"},
    )
    add_devices_option(parser)
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<time>-<backend>)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-report", action="store_true", help="skip RUN_DIR/report/")
    parser.add_argument("--no-plots", action="store_true", help="a report without pictures")
    parser.add_argument(
        "--resume", type=Path, metavar="RUN_DIR",
        help="finish an interrupted run from its last completed epoch, as it was configured",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    backend = use_backend(args.backend or default_backend())
    prepare_devices(backend, args.devices)  # before the engine starts
    from fraudkeras.training.train import train

    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{backend}"
    with _resume_hint(out):
        trained = train(
            args.data or "auto",
            out=out,
            force=args.force,
            report=not args.no_report,
            plots=not args.no_plots,
            verbose=0 if args.quiet else "auto",
            stream=args.stream,
            stream_cache=args.stream_cache,
            devices=args.devices,
            **config_options(args),
        )
    return _print_run(trained)


def _resume(args: argparse.Namespace) -> int:
    given = sorted(config_options(args))
    if given or args.out is not None or args.force:
        named = ", ".join("--" + name.replace("_", "-") for name in given) or "--out/--force"
        raise ParameterError(
            f"--resume continues {args.resume} exactly as it was configured; drop {named}"
        )
    record, _ = checkpoint.load(checkpoint.checkpoint_dir(args.resume))
    backend = use_backend(args.backend or record["backend"])
    prepare_devices(backend, args.devices)
    from fraudkeras.training.train import resume

    with _resume_hint(args.resume):
        trained = resume(
            args.resume,
            data=args.data,
            report=not args.no_report,
            plots=not args.no_plots,
            verbose=0 if args.quiet else "auto",
            devices=args.devices,
            stream_cache=args.stream_cache,
        )
    return _print_run(trained)


@contextlib.contextmanager
def _resume_hint(out: Path) -> Iterator[None]:
    """On Ctrl-C, say how to continue when a checkpoint exists."""
    try:
        yield
    except KeyboardInterrupt:
        if checkpoint.checkpoint_dir(out).is_dir():
            log.info("interrupted: continue with  fraudkeras train --resume %s", out)
        raise


def _print_run(trained: Any) -> int:
    if trained.run_dir is None:  # a process of a group other than the first: it wrote nothing
        return 0
    metrics = trained.metrics
    print(
        f"backend {metrics['backend']}{_on_devices(metrics)} | data {trained.data['origin']} "
        f"| split {metrics['split']} "
        f"| class weight {metrics['class_weight']['strategy']} "
        f"| {counted(metrics['epochs_run'], 'epoch')} "
        f"(best {metrics['best_epoch']}) in {metrics['train_seconds']:.1f} s"
    )
    print(format_table(metrics))
    print(f"run saved to {trained.run_dir}")
    if trained.report_dir is not None:
        print(f"report written to {trained.report_dir}")
    return 0


def _on_devices(metrics: dict[str, Any]) -> str:
    devices = metrics.get("devices", 1)
    return f" on {devices} devices" if devices > 1 else ""
