"""Where a training step's time goes: ``FraudMLP.fit`` on the full table under the
active backend (``KERAS_BACKEND``), one epoch to warm up, then one epoch under
``cProfile``; prints the step's wall time and the functions taking most of it
(own time), grouped by the library they belong to.

    KERAS_BACKEND=torch python scripts/profile_train_step.py [--data PATH] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"


def library(filename: str) -> str:
    """The package a profiled function's file belongs to."""
    for name in ("fraudkeras", "keras", "torch", "tensorflow", "jax", "numpy", "optree"):
        if f"/{name}/" in filename:
            return name
    return "builtins" if filename.startswith("~") or filename.startswith("<") else "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    import keras

    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import FraudMLP
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.building import compile_model
    from fraudkeras.training.epochs import fit_epochs, training_batches

    parts = split(load_transactions(args.data), "stratified", 42)
    weights = class_weights(parts.train.y, "balanced")
    config = TrainConfig(epochs=1)
    model = FraudMLP(class_weight=(weights.normal, weights.fraud))
    model.adapt(parts.train.x)
    steps = math.ceil(len(parts.train.y) / config.batch_size)
    compile_model(model, config.learning_rate, steps)
    batches = training_batches(model, parts, config)
    fit_epochs(model, batches, config, 0, [], 0)  # warm-up (compiles)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    fit_epochs(model, batches, TrainConfig(epochs=2), 1, [], 0)
    profile.disable()
    seconds = time.perf_counter() - started
    print(f"{keras.backend.backend()}: {seconds:.3f} s for {steps} steps under cProfile, "
          f"{1000 * seconds / steps:.3f} ms/step (profiling itself adds to it)")  # fmt: skip
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    by_library: dict[str, float] = defaultdict(float)
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        by_library[library(filename)] += row[2]
    print("own time by library: " + ", ".join(
        f"{name} {100 * t / total:.0f}%" for name, t in sorted(by_library.items(),
                                                               key=lambda kv: -kv[1])
    ))  # fmt: skip
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
