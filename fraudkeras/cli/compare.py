"""``fraudkeras compare``: train under every backend and compare."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fraudkeras._core.backend import BACKENDS
from fraudkeras._core.errors import ParameterError
from fraudkeras.cli.options import add_config_options, config_options, names
from fraudkeras.runs.config import TrainConfig

#: the training options compare passes on to every backend's ``fraudkeras train``
_PASSED_ON = ("epochs", "seed", "split", "class_weight", "batch_size")


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "compare",
        parents=[common],
        help="train an independent run under every backend and compare them "
        "(for backend agreement on the same inputs, see parity)",
        description="Train an independent run under every backend (same data, split and "
        "seed, but each backend draws its own initial weights and shuffles, so metrics "
        "differ by seed noise), cross-load the models and compare. To check that the "
        "backends compute the same training, run `fraudkeras parity`.",
    )
    parser.add_argument(
        "--data", default="auto",
        help="auto (default), sample, openml, or a .csv/.parquet path: every backend trains on it",
    )  # fmt: skip
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    add_config_options(parser, _PASSED_ON)
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.json/.md")
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    parser.add_argument("--no-plots", action="store_true", help="no compare.png")
    return parser


def run(args: argparse.Namespace) -> int:
    from fraudkeras.comparison import COMPARE_JSON, COMPARE_MD, compare

    backends = names(args.backends)
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        raise ParameterError(f"--backends: unknown backend(s) {', '.join(unknown) or '(none)'}")
    given = config_options(args)
    TrainConfig(**given)  # refuse bad values before anything trains
    train_args: list[str] = []
    for name, value in given.items():
        train_args += ["--" + name.replace("_", "-"), str(value)]
    compare(
        args.data, out=args.out, backends=backends, force=args.force,
        plots=not args.no_plots, train_args=tuple(train_args),
    )  # fmt: skip
    print((args.out / COMPARE_MD).read_text(), end="")
    print(f"written to {args.out} ({COMPARE_JSON}, {COMPARE_MD})")
    return 0
