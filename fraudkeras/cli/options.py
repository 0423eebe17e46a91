"""What the commands share: the parser that turns bad arguments into one-line
errors, the training options (derived from :class:`TrainConfig`'s fields, not
retyped), threshold options, and choosing a run's backend."""

from __future__ import annotations

import argparse
import math
import re
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from fraudkeras._core.backend import BACKENDS, use_backend
from fraudkeras._core.errors import ParameterError
from fraudkeras.data.splits import SPLIT_KINDS
from fraudkeras.metrics.calibration import CALIBRATIONS
from fraudkeras.metrics.thresholds import THRESHOLD_STRATEGIES
from fraudkeras.modeling.architecture import EMBEDDINGS
from fraudkeras.modeling.features import TRANSFORMS
from fraudkeras.runs.config import SCHEDULES, TrainConfig
from fraudkeras.runs.folder import RunFolder

#: help for each TrainConfig field; the defaults come from the dataclass itself
CONFIG_HELP = {
    "split": "stratified (70/15/15) or time (ordered by Time)",
    "class_weight": "balanced, sqrt, none, or explicit '0:W0,1:W1'",
    "epochs": "most epochs to train",
    "batch_size": "rows per training step",
    "learning_rate": "Adam's learning rate",
    "seed": "initial weights and shuffling",
    "split_seed": "the stratified split's seed",
    "patience": "early stopping: epochs without a better validation PR-AUC",
    "hidden_units": "hidden layer sizes, like 64,32,16",
    "features": "input transform ahead of the scaler: raw, time_of_day, time_of_day_log_amount",
    "threshold_strategy": "f1: max F1; recall: fewest alerts reaching --target-recall; "
    "cost: lowest missed amount + --review-cost per false alarm; expected-cost: flag each "
    "transaction whose expected loss p x (Amount + --chargeback-fee) exceeds the expected "
    "review cost (1 - p) x --review-cost",
    "target_recall": "the recall the 'recall' strategy must reach",
    "review_cost": "what checking one false alarm costs, in Amount's currency",
    "chargeback_fee": "a fixed cost of every missed fraud, beside its Amount",
    "calibration": "the map fitted on validation after training: platt (scale and bias), "
    "temperature, prior (undo the class weights only) or none",
    "schedule": "the learning rate over the run: constant, or cosine (decays to 0 at the "
    "last epoch)",
    "ema": "momentum of an exponential moving average of the weights, which validation, "
    "checkpoints and the saved model use (0: none; lowered so the average spans at most a "
    "fifth of an epoch)",
    "embeddings": "periodic: each scaled feature as learned sines and cosines (8 frequencies, "
    "8 dimensions) ahead of the hidden layers; none: the scaled features as they are",
    "ensemble": "members of an efficient ensemble (TabM-mini): shared hidden layers, a sign "
    "vector and a logit per member, their logits averaged; 1: no ensemble",
}
_CHOICES = {
    "split": SPLIT_KINDS,
    "threshold_strategy": THRESHOLD_STRATEGIES,
    "features": TRANSFORMS,
    "calibration": CALIBRATIONS,
    "schedule": SCHEDULES,
    "embeddings": EMBEDDINGS,
}
THRESHOLD_FIELDS = ("threshold_strategy", "target_recall", "review_cost", "chargeback_fee")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument raises ParameterError (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        # the CLI prefixes every error with "fraudkeras: error:"; name the command only
        command = self.prog.partition(" ")[2]
        raise ParameterError(f"{command}: {message}" if command else message)


def finite_float(text: str) -> float:
    """A float option: NaN and infinity are refused (they are not JSON either)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,32,16, got {text!r}") from None


def _default(name: str) -> Any:
    value = getattr(TrainConfig(), name)
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def add_config_options(
    parser: argparse.ArgumentParser,
    names: typing.Iterable[str],
    *,
    flags: dict[str, str] | None = None,
) -> None:
    """One option per TrainConfig field in ``names``. Nothing is set when an option
    is not given (``argparse.SUPPRESS``), so TrainConfig's own defaults apply and
    ``--resume`` can tell which options were given."""
    hints = typing.get_type_hints(TrainConfig)
    converters: dict[Any, Any] = {int: int, float: finite_float, str: str}
    for name in names:
        kind = hints[name]
        convert = converters.get(kind, _sizes)
        parser.add_argument(
            (flags or {}).get(name, "--" + name.replace("_", "-")),
            dest=name,
            type=convert,
            choices=_CHOICES.get(name),
            default=argparse.SUPPRESS,
            help=f"{CONFIG_HELP[name]} (default: {_default(name)})",
        )


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}


def add_devices_option(parser: argparse.ArgumentParser) -> None:
    """``--devices N``: train data-parallel on N devices."""
    parser.add_argument(
        "--devices", type=_positive_int, default=1, metavar="N",
        help="train data-parallel on N devices, each batch split across them (jax, "
        "tensorflow: N devices of this process, on a CPU N parts of it; torch: N worker "
        "processes on this host, under torchrun each process joins its group; jax with "
        "KERAS_DISTRIBUTION_* set: every process's devices; default: 1)",
    )  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_backend_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--backend", choices=BACKENDS, help=f"default: {default}")


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", help="where the run's data is now, if it moved (default: where it was)"
    )


def open_run(run_dir: Path, backend: str | None, data: str | None = None) -> RunFolder:
    """The run folder, with ``backend`` (or the run's own) chosen for Keras."""
    run = RunFolder(run_dir, data=data)
    use_backend(backend or run.backend)
    return run


def names(text: str) -> tuple[str, ...]:
    """A comma-separated option as a tuple of names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def with_flags(message: str, parser: argparse.ArgumentParser | None) -> str:
    """A library message that names Python parameters (``force=True``, ``data=``,
    ``learning_rate``), rewritten with the command line's flags."""
    if parser is None:
        return message
    flags = {
        action.dest: action.option_strings[-1]
        for action in parser._actions
        if action.option_strings and action.dest != "help"
    }
    for dest, flag in flags.items():
        message = re.sub(rf"\b{dest}=True\b", flag, message)
        message = re.sub(rf"\b{dest}=(?=\s|$)", flag, message)
        message = re.sub(rf"^{dest}(?=[ :])", flag, message)
    return message
