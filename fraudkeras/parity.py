"""``fraudkeras parity``: do the backends compute the same training?

One set of initial weights (one ``.keras`` file) and the same batches in the same
order are trained by each backend in its own process, through the model's own
``fit`` (so the real training step runs); each process records the loss of
every step, the final weights and the predictions on rows it never trained on.
Every pair of backends is then compared, and a gap beyond the tolerance fails.
Unlike ``compare`` (independent trainings, each with its own random numbers),
nothing here is left to chance: the only differences are the backends' float32
kernels and summation orders.

The parent process never imports Keras; the jobs (:mod:`fraudkeras.jobs`) run
:func:`prepare` under the first backend and :func:`fit_under_backend` under each.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.errors import BackendError, DataError, ParameterError
from fraudkeras._core.files import atomic_file, check_output_file
from fraudkeras._core.subprocesses import run_job
from fraudkeras._core.validation import check_float, check_int

#: measured on the bundled sample, 24 Adam steps of 128 rows: loss 1.3e-6, weights
#: 9.3e-7, predictions 3.6e-7 at most between any two backends; a few times that
DEFAULT_TOLERANCE = 5e-6
DEFAULT_STEPS, DEFAULT_BATCH_SIZE = 24, 128
PREDICTION_ROWS = 2048
LEARNING_RATE = 1e-3
QUANTITIES = ("step_loss", "weights", "predictions")
INITIAL, BATCHES = "initial.keras", "batches.npz"


@dataclass(frozen=True)
class PairGap:
    """The largest absolute differences between two backends' results."""

    first: str
    second: str
    gaps: dict[str, float]

    def failed(self, tolerance: float) -> list[str]:
        """The quantities whose gap exceeds ``tolerance`` (NaN counts as beyond)."""
        return [name for name, gap in self.gaps.items() if not gap <= tolerance]


@dataclass(frozen=True)
class ParityResult:
    backends: tuple[str, ...]
    steps: int
    tolerance: float
    pairs: tuple[PairGap, ...]
    seconds: dict[str, float]
    #: how many held-out rows each backend predicted
    predicted: int = 0

    @property
    def passed(self) -> bool:
        return not any(pair.failed(self.tolerance) for pair in self.pairs)


def parity(
    data: str | os.PathLike[str] = "sample",
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    backends: tuple[str, ...] = BACKENDS,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    keep: str | os.PathLike[str] | None = None,
) -> ParityResult:
    """Train ``steps`` batches of ``batch_size`` rows of ``data`` under each of
    ``backends`` from the same initial weights and compare every pair.

    ``keep`` names a folder to keep the initial weights, the batches and each
    backend's results in (``BACKEND.npz``); otherwise they are removed. Raises
    BackendError when fewer than two of ``backends`` are installed or one fails.
    """
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    tolerance = check_float("tolerance", tolerance, low=0.0)
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or len(set(backends)) < 2:
        raise ParameterError(
            f"backends: name two or more of {', '.join(BACKENDS)} "
            f"(got {', '.join(backends) or 'none'})"
        )
    missing = [name for name in backends if not is_installed(name)]
    if missing:
        raise BackendError(
            f"backend(s) {', '.join(missing)} not installed: "
            f"pip install 'fraudkeras[{','.join(missing)}]'"
        )
    with tempfile.TemporaryDirectory(prefix="fraudkeras-parity-") as scratch:
        folder = Path(keep) if keep is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        run_job(backends[0], "parity-prepare", str(data), folder, str(steps), str(batch_size),
                str(seed))  # fmt: skip
        results, seconds = {}, {}
        for backend in dict.fromkeys(backends):
            out = folder / f"{backend}.npz"
            run_job(backend, "parity-fit", folder, out)
            with np.load(out) as saved:
                results[backend] = {name: saved[name] for name in saved.files}
            seconds[backend] = float(results[backend].pop("seconds"))
    pairs = tuple(pair_gap(a, b, results[a], results[b]) for a, b in combinations(results, 2))
    predicted = len(next(iter(results.values()))["predictions"])
    return ParityResult(tuple(results), steps, tolerance, pairs, seconds, predicted)


def pair_gap(first: str, second: str, a: dict[str, Any], b: dict[str, Any]) -> PairGap:
    """The largest |difference| per quantity between two backends' results."""
    weights = sorted(k for k in a if k.startswith("w"))

    def gap(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))

    return PairGap(first, second, {
        "step_loss": gap(a["step_losses"], b["step_losses"]),
        "weights": max(gap(a[k], b[k]) for k in weights),
        "predictions": gap(a["predictions"], b["predictions"]),
    })  # fmt: skip


def summary(result: ParityResult) -> str:
    """The table printed by the command: one line per pair, then the verdict."""
    lines = [f"{'pair':<22}" + "".join(f"{name:>14}" for name in QUANTITIES) + "  result"]
    for pair in result.pairs:
        failed = pair.failed(result.tolerance)
        cells = "".join(f"{pair.gaps[name]:>14.2e}" for name in QUANTITIES)
        verdict = "FAIL (" + ", ".join(failed) + ")" if failed else "ok"
        lines.append(f"{pair.first + ' vs ' + pair.second:<22}{cells}  {verdict}")
    verdict = "agree" if result.passed else "DISAGREE"
    lines.append(
        f"{len(result.backends)} backends {verdict} within {result.tolerance:g} "
        f"(max |difference| over {result.steps} steps' losses, the final weights and "
        f"{result.predicted:,d} held-out predictions)"
    )
    return "\n".join(lines)


def write_junit(result: ParityResult, path: Path, *, force: bool = False) -> None:
    """JUnit XML for CI dashboards: a test case per pair and quantity."""
    check_output_file(path, force=force)
    failures = sum(len(pair.failed(result.tolerance)) for pair in result.pairs)
    suite = ElementTree.Element(
        "testsuite", name="fraudkeras parity", tests=str(len(result.pairs) * len(QUANTITIES)),
        failures=str(failures), errors="0", time=f"{sum(result.seconds.values()):.3f}",
    )  # fmt: skip
    for pair in result.pairs:
        for name in QUANTITIES:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"parity.{pair.first}_vs_{pair.second}", name=name
            )
            gap = pair.gaps[name]
            if name in pair.failed(result.tolerance):
                failure = ElementTree.SubElement(
                    case, "failure", message=f"max |difference| {gap:.3e} > {result.tolerance:g}"
                )
                failure.text = f"{pair.first} vs {pair.second}: {name} differs by {gap:.3e}"
            ElementTree.SubElement(case, "system-out").text = f"max |difference| {gap:.3e}"
    ElementTree.indent(suite)
    with atomic_file(path) as scratch:
        ElementTree.ElementTree(suite).write(scratch, encoding="utf-8", xml_declaration=True)


# -- the jobs, run under a backend (see fraudkeras.jobs) --


def prepare(data: str, folder: str, steps: str, batch_size: str, seed: str) -> None:
    """Write the batches (a seeded sample of ``data``: the training rows, then the
    held-out rows to predict) and the initial weights every backend starts from."""
    import keras

    from fraudkeras.data.class_weights import class_weights
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import FraudMLP

    table = load_transactions(data)
    x, y = table.features().astype(np.float32), table.labels()
    rows = int(steps) * int(batch_size)
    if len(y) < rows + 1:
        raise DataError(f"{data}: {len(y):,d} rows, fewer than {rows + 1:,d} for {steps} steps")
    order = np.random.default_rng(int(seed)).permutation(len(y))
    train, held_out = order[:rows], order[rows : rows + PREDICTION_ROWS]
    np.savez(
        Path(folder) / BATCHES, x=x[train], y=y[train], x_held_out=x[held_out],
        batch_size=np.int64(batch_size),
    )  # fmt: skip
    keras.utils.set_random_seed(int(seed))
    weights = class_weights(y[train])
    model = FraudMLP(class_weight=(weights.normal, weights.fraud))
    model.adapt(x[train])
    model.save(Path(folder) / INITIAL)


def fit_under_backend(folder: str, out: str) -> None:
    """One epoch of ``fit`` over the batches, in file order, from the initial
    weights; writes every step's loss, the final weights, the held-out predictions."""
    import time

    import keras

    from fraudkeras.modeling.model import fraud_probabilities, load_model

    model = load_model(Path(folder) / INITIAL)
    with np.load(Path(folder) / BATCHES) as batches:
        x, y, x_held_out = batches["x"], batches["y"], batches["x_held_out"]
        batch_size = int(batches["batch_size"])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE))
    running: list[float] = []

    class _Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            running.append(float((logs or {})["loss"]))

    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[_Record()])  # fmt: skip
    arrays: dict[str, Any] = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays["step_losses"] = step_losses(np.array(running), len(y), batch_size)
    arrays["predictions"] = fraud_probabilities(model, x_held_out)
    arrays["seconds"] = np.float64(time.perf_counter() - started)
    np.savez(out, **arrays)


def step_losses(running_means: np.ndarray, rows: int, batch_size: int) -> np.ndarray:
    """Per-step losses from the loss tracker's running, size-weighted means (what
    ``fit`` reports after each step)."""
    sizes = np.minimum(batch_size, rows - batch_size * np.arange(len(running_means)))
    totals = running_means.astype(np.float64) * np.cumsum(sizes)
    return np.diff(totals, prepend=0.0) / sizes
