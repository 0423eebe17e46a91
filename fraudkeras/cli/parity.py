"""``fraudkeras parity``: prove the backends train alike (for CI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import BACKENDS
from fraudkeras.cli.options import finite_float, names

#: the exit status when backends disagree beyond the tolerance (a failed check, as pytest)
EXIT_DISAGREE = 1


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from fraudkeras.parity import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, DEFAULT_TOLERANCE

    parser: argparse.ArgumentParser = commands.add_parser(
        "parity", parents=[common],
        help="train the same batches from the same weights under each backend and "
        "compare losses, weights and predictions (exit 1 beyond --tolerance)",
        description="One initial-weights file and the same batches, each backend in its "
        "own process through the model's own fit: every step's loss, the final weights "
        "and held-out predictions are compared for every pair of backends. Exits 1 when "
        "a gap exceeds --tolerance.",
    )  # fmt: skip
    parser.add_argument(
        "--data", default="sample",
        help="a CSV/Parquet file, 'sample', 'openml' or 'auto' (default: sample, bundled)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps (default: {DEFAULT_STEPS})")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"rows per step (default: {DEFAULT_BATCH_SIZE})")  # fmt: skip
    parser.add_argument(
        "--backends", default=",".join(BACKENDS),
        help=f"comma-separated, two or more (default: {','.join(BACKENDS)})",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=finite_float, default=DEFAULT_TOLERANCE,
        help=f"largest |difference| allowed in any loss, weight or prediction "
        f"(default: {DEFAULT_TOLERANCE:g})",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="initial weights and the rows chosen (default: 0)")  # fmt: skip
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR",
        help="keep the initial weights, batches and each backend's results here",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing --junit file")
    return parser


def run(args: argparse.Namespace) -> int:
    from fraudkeras._core.files import check_output_file
    from fraudkeras.parity import parity, summary, write_junit

    if args.junit is not None:  # refuse before minutes of training, not after
        check_output_file(args.junit, force=args.force)
    backends = names(args.backends)
    print(f"training {args.steps} steps under {', '.join(backends)}, each in its own process")
    result = parity(
        args.data, steps=args.steps, batch_size=args.batch_size, backends=backends,
        tolerance=args.tolerance, seed=args.seed, keep=args.keep,
    )  # fmt: skip
    print(summary(result))
    if args.junit is not None:
        write_junit(result, args.junit, force=args.force)
        print(f"JUnit XML -> {args.junit}")
    return 0 if result.passed else EXIT_DISAGREE
