"""Training-speed benchmark: FraudMLP on each backend against the notebook's own
training loops, run as they are (``../shared/anchors``), interleaved in one run.

Cases, each in its own process on the full table (batch 256, Adam 1e-3; FraudMLP
with the weight averaging ``train()`` uses by default):

- ``anchor-torch``, ``anchor-jax``, ``anchor-tf``: ``seed_torch.py``,
  ``seed_jax_adam.py`` and ``seed_tf.py`` (the same loop in each framework) with
  ``EPOCHS=N``; they print their median epoch time after the first.
- ``anchor-torch-1thread``, for context: ``seed_torch.py`` with
  ``OMP_NUM_THREADS=1``, since FraudMLP trains torch on one intra-op thread.
- ``fit-<backend>``: one ``FraudMLP.fit`` over all epochs on the data path that
  ``train()`` uses (seeded per-epoch order, :mod:`fraudkeras.data.batches`), no
  validation, as the anchors.
- ``fitjit-<backend>`` (torch, tensorflow): the same ``fit`` compiled with
  ``jit_compile=True`` (torch: ``torch.compile`` of the step, only when named in
  ``--cases``: it compiles for minutes; TensorFlow: XLA). JAX's step is always
  jitted.
- ``fitval-<backend>``: the same with ``train()``'s validation data, for context.
- ``train-<backend>``: ``fraudkeras.train()`` itself, with an ``out=`` folder
  (checkpoint every epoch), validation every epoch and evaluation at the end.

Epoch times for ``fit`` and ``train`` are the intervals between consecutive
``on_epoch_begin`` calls (an epoch with everything ``train`` does after it: the
checkpoint included); the first epoch (compilation) is dropped. Cases are
interleaved over several rounds (this 2-core machine is shared and its speed
drifts between minutes); each case's median is over all its rounds; the first
epoch (with compilation) is printed apart. Targets: each backend's ``fit`` against
the same loop written in its own framework: torch <= 1.25x, jax <= 1.0x,
tensorflow <= 1.0x; and ``train`` <= 1.1x ``fit`` on every backend.

    python scripts/bench_training.py [--data PATH] [--epochs 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "anchors"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
BACKENDS = ("jax", "torch", "tensorflow")
ANCHOR_CASES = {
    "anchor-torch": ("seed_torch.py", {}),
    "anchor-torch-1thread": ("seed_torch.py", {"OMP_NUM_THREADS": "1"}),
    "anchor-jax": ("seed_jax_adam.py", {}),
    "anchor-tf": ("seed_tf.py", {}),
}
CASES = (
    *ANCHOR_CASES,
    *(f"{kind}-{backend}" for kind in ("fit", "fitval", "train") for backend in BACKENDS),
    "fitjit-torch",
    "fitjit-tensorflow",
)
#: ``fitjit-torch`` runs only when named: torch.compile of the step took minutes
#: before its first epoch
DEFAULT_CASES = tuple(case for case in CASES if case != "fitjit-torch")
#: case -> (references, the fastest of which it is compared with; target ratio). The
#: notebook's PyTorch loop counts at its faster thread setting (FraudMLP trains torch
#: on one thread), so a busy machine's thread contention cannot flatter the ratio.
TARGETS = {
    "fit-torch": (("anchor-torch", "anchor-torch-1thread"), 1.25),
    "fit-jax": (("anchor-jax",), 1.0),
    "fitjit-torch": (("anchor-torch", "anchor-torch-1thread"), 1.25),
    "fit-tensorflow": (("anchor-tf",), 1.0),
    "fitjit-tensorflow": (("anchor-tf",), 1.0),
    **{f"train-{backend}": ((f"fit-{backend}",), 1.1) for backend in BACKENDS},
}
BATCH, LEARNING_RATE, SEED = 256, 1e-3, 0


class EpochStarts:
    """Marks each ``on_epoch_begin``; built lazily so this module imports without Keras."""

    def __new__(cls) -> Any:
        import keras

        class _Starts(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self.times.append(time.perf_counter())

        return _Starts()


def fit_case(data: str, epochs: int, validate: bool, jit: bool = False) -> list[float]:
    """One ``FraudMLP.fit`` over all epochs, data as ``train()`` feeds it."""
    import keras

    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import FraudMLP
    from fraudkeras.modeling.seeding import seed_everything
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.building import STEPS_PER_EXECUTION, ema_momentum
    from fraudkeras.training.epochs import fit_epochs, training_batches

    parts = split(load_transactions(data), "stratified", 42)
    weights = class_weights(parts.train.y, "balanced")
    config = TrainConfig(epochs=epochs, batch_size=BATCH, seed=SEED)  # train()'s defaults
    seed_everything(SEED)
    model = FraudMLP(class_weight=(weights.normal, weights.fraud), features=config.features)
    model.adapt(parts.train.x)
    per_epoch = math.ceil(len(parts.train.y) / BATCH)
    momentum = ema_momentum(config.ema, per_epoch)  # the default weight averaging
    averaged = {"use_ema": True, "ema_momentum": momentum} if momentum > 0 else {}
    model.compile(  # as train() compiles, but for jit_compile
        optimizer=keras.optimizers.Adam(LEARNING_RATE, **averaged),
        steps_per_execution=min(STEPS_PER_EXECUTION, per_epoch),
        jit_compile=True if jit else "auto",
    )  # fmt: skip
    starts = EpochStarts()
    batches = training_batches(model, parts, config)
    validation = parts.validation if validate else None
    fit_epochs(model, batches, config, 0, [starts], 0, validation)
    starts.times.append(time.perf_counter())  # the last epoch's end
    return [b - a for a, b in itertools.pairwise(starts.times)]


def train_case(data: str, epochs: int) -> list[float]:
    """``fraudkeras.train()`` with a run folder: per-epoch checkpoints, validation."""
    from fraudkeras.training.train import train

    starts = EpochStarts()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        train(data, out=out, callbacks=[starts], epochs=epochs, batch_size=BATCH, seed=SEED,
              patience=epochs)  # fmt: skip
        starts.times.append(time.perf_counter())  # the end, evaluation and saving included
    return [b - a for a, b in itertools.pairwise(starts.times)]


def run_case(case: str, data: str, epochs: int) -> tuple[float | None, list[float]]:
    """Seconds of the first epoch (None for an anchor) and per epoch after it,
    from a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "EPOCHS": str(epochs), "CREDITCARD": data}
    if case in ANCHOR_CASES:
        script, extra = ANCHOR_CASES[case]
        command = [sys.executable, script]
        done = subprocess.run(command, capture_output=True, text=True, env={**env, **extra},
                              cwd=ANCHORS)  # fmt: skip
        found = re.search(r"EPOCH_S_AFTER_FIRST ([0-9.]+)", done.stdout)
        if done.returncode != 0 or not found:
            raise SystemExit(f"{case} failed:\n{done.stdout[-1000:]}{done.stderr[-3000:]}")
        return None, [float(found.group(1))]  # the script's own median after the first
    env["KERAS_BACKEND"] = case.rsplit("-", 1)[1]
    command = [sys.executable, __file__, "--case", case, "--data", data, "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{case} failed:\n{done.stderr[-3000:]}")
    times = list(json.loads(done.stdout.strip().splitlines()[-1]))
    # the last interval is a train() run's evaluation and saving: not an epoch
    epochs_only = times[1:-1] if case.startswith("train-") else times[1:]
    return times[0], epochs_only


def table(medians: dict[str, float]) -> list[str]:
    """The markdown table of medians and ratios against each case's reference."""
    lines = ["| case | s/epoch | reference | ratio | target |", "|---|---:|---|---:|---|"]
    for case, seconds in medians.items():
        references, target = TARGETS.get(case, ((), 0.0))
        present = [r for r in references if r in medians]
        if not present:
            lines.append(f"| {case} | {seconds:.3f} | | | |")
            continue
        reference = min(present, key=medians.__getitem__)
        ratio = seconds / medians[reference]
        met = "met" if ratio <= target else "**missed**"
        lines.append(
            f"| {case} | {seconds:.3f} | {reference} {medians[reference]:.3f} | {ratio:.2f}x "
            f"| <= {target:.2f}x, {met} |"
        )
    return lines


def medians_from_log(text: str) -> dict[str, float]:
    """Each case's median over the ``round ...`` lines of a saved run's output."""
    times: dict[str, list[float]] = {}
    for found in re.finditer(r"^round \d+ (\S+) +s/epoch ([0-9. ]+)$", text, re.MULTILINE):
        times.setdefault(found.group(1), []).extend(map(float, found.group(2).split()))
    return {case: statistics.median(values) for case, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=6, help="at least 4: the first is dropped")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), choices=CASES)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--table-from", help="print the table from a saved run's output")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table_from:
        print("\n".join(table(medians_from_log(Path(args.table_from).read_text()))))
        return 0
    if args.case:
        kind = args.case.rsplit("-", 1)[0]
        if kind == "train":
            times = train_case(args.data, args.epochs)
        else:
            times = fit_case(args.data, args.epochs, kind == "fitval", jit=kind == "fitjit")
        print(json.dumps(times))
        return 0

    after_first: dict[str, list[float]] = {case: [] for case in args.cases}
    for round_ in range(args.rounds):
        for case in args.cases:
            first, times = run_case(case, args.data, args.epochs)
            after_first[case] += times
            shown = " ".join(f"{t:.3f}" for t in times)
            print(f"round {round_ + 1} {case:22s} s/epoch {shown}", flush=True)
            if first is not None:
                print(f"round {round_ + 1} {case:22s} first epoch {first:.3f} s", flush=True)
    medians = {case: statistics.median(times) for case, times in after_first.items()}
    print(
        f"\nmedian s/epoch after the first, {args.epochs} epochs x {args.rounds} interleaved "
        f"rounds, batch {BATCH}, {os.cpu_count()} cores"
    )
    print("\n".join(table(medians)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
