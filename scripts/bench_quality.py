"""Quality benchmark: FraudMLP against gradient boosting on the very same rows, with
intervals, time folds and the figures a fraud team decides on.

Evaluation protocol (:mod:`fraudkeras.metrics.protocol`):

- ``stratified``: the notebook's 70/15/15 split, for every split seed in
  ``--split-seeds`` and model seed in ``--seeds``;
- ``time``: the table's earliest 70 % train, the next 15 % validate, the latest
  15 % test, for every model seed;
- ``prequential``: ``--folds`` windows of ``--test-hours`` at the end of the table,
  each after a gap of ``--gap-hours``, trained and validated on the transactions
  before the gap (the ``time`` split's proportions), for every model seed.

Every case is a table and a split, written once: FraudMLP trains on it with
``fraudkeras train`` (one process per run, under each backend named, default
settings unless ``--train-args`` says otherwise); the gradient-boosting reference is
``../shared/anchors/baseline_gbdt.py`` run as it is (XGBoost and LightGBM, its own
hyper-parameters and seeds 1-3, early stopping on validation), its
``seed_common.load()`` answered with this case's split instead of the notebook's.

For each model and protocol: test PR-AUC, Brier score, ECE (20 equal-mass bins),
recall at 1 % false-positive rate, precision of the ``--k`` top-scored
transactions per day, and the cost (missed fraud amount + ``--review-cost`` per
false alarm) of flagging at 0.5, of the best single threshold in hindsight and of
the expected-cost rule; each as the mean and 95 % interval over runs (seeds, split
seeds, folds), and the median test PR-AUC the targets are stated in.

``--variant NAME="ARGS"`` (repeatable) trains FraudMLP once more per run with extra
``fraudkeras train`` options (a lever such as ``ema="--ema 0.99"``) on the very same
cases and seeds; its effect is the paired difference from the default model's run
of the same case, seed and backend, with its 95 % interval. ``--calibrations``
refits the default model's calibration map on validation by other methods
(``none``, ``temperature``, ...) without training again, reported the same way.

    pip install '.[bench]'   # xgboost, lightgbm
    python scripts/bench_quality.py [--data PATH] [--backends jax torch tensorflow]
        [--seeds 1 2 3 4 5] [--split-seeds 42 7 11] [--protocols stratified time prequential]
        [--folds 3 --test-hours 3 --gap-hours 2] [--no-gbdt] [--train-args "--epochs 20"]
        [--variant ema="--ema 0.99" ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import runpy
import shlex
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "creditcard.parquet"
DEFAULT_ANCHORS = SHARED / "anchors"
METRICS = (
    ("pr_auc", "PR-AUC", "{:.4f}"),
    ("brier", "Brier", "{:.6f}"),
    ("ece", "ECE", "{:.6f}"),
    ("recall_at_1pct_fpr", "recall@1%FPR", "{:.3f}"),
    ("precision_at_k", "precision@k/day", "{:.3f}"),
    ("cost_at_0.5", "cost @0.5", "{:,.0f}"),
    ("cost_best_threshold", "cost best thr. (hindsight)", "{:,.0f}"),
    ("cost_expected_rule", "cost p x Amount rule", "{:,.0f}"),
)


@dataclass
class Case:
    """One table and split that every model is trained and tested on."""

    protocol: str
    name: str
    path: Path
    kind: str
    split_seed: int


def measure(y: np.ndarray, p: np.ndarray, amounts: np.ndarray, times: np.ndarray,
            k: int, review_cost: float) -> dict[str, float]:  # fmt: skip
    from fraudkeras.metrics.calibration import brier, reliability
    from fraudkeras.metrics.decisions import Decision, decision_costs
    from fraudkeras.metrics.protocol import precision_at_k_per_period, recall_at_fpr

    priced = decision_costs(y, p, amounts, Decision("expected-cost", review_cost=review_cost))
    return {
        "pr_auc": float(average_precision_score(y, p)),
        "brier": brier(y, p),
        "ece": reliability(y, p).ece,
        "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
        "precision_at_k": precision_at_k_per_period(y, p, times, k),
        "cost_at_0.5": priced["flag_at_0.5"],
        "cost_best_threshold": priced["best_single_threshold_in_hindsight"],
        "cost_expected_rule": priced["expected_cost_rule"],
    }


def cases(args: argparse.Namespace, table: Any, scratch: Path) -> list[Case]:
    from fraudkeras.metrics.protocol import prequential_folds

    found: list[Case] = []
    data = Path(args.data)
    if "stratified" in args.protocols:
        found += [Case("stratified", f"split seed {s}", data, "stratified", s)
                  for s in args.split_seeds]  # fmt: skip
    if "time" in args.protocols:
        found.append(Case("time", "70/15/15 by time", data, "time", 42))
    if "prequential" in args.protocols:
        times = table.frame["Time"].to_numpy()
        folds = prequential_folds(
            times, test_hours=args.test_hours, gap_hours=args.gap_hours, folds=args.folds
        )
        for i, fold in enumerate(folds):
            path = scratch / f"fold-{i}.parquet"
            table.frame[fold.rows].write_parquet(path)
            name = f"fold {i + 1}: test hours {fold.test_start_hour:.1f}-{fold.test_end_hour:.1f}"
            found.append(Case("prequential", name, path, "time", 42))
    return found


@contextlib.contextmanager
def answered_load(parts: Any) -> Iterator[list[tuple[str, np.ndarray]]]:
    """``seed_common`` for baseline_gbdt.py: its ``load()`` returns this case's split
    (standardized on the training rows, as the notebook's), its ``report()`` keeps
    each model's test probabilities instead of printing."""
    from sklearn.preprocessing import StandardScaler

    scores: list[tuple[str, np.ndarray]] = []
    module = types.ModuleType("seed_common")

    def load() -> tuple[Any, ...]:
        scaler = StandardScaler()
        train = scaler.fit_transform(parts.train.x)
        validation, test = scaler.transform(parts.validation.x), scaler.transform(parts.test.x)
        y = parts.train.y
        n, frauds = len(y), int(y.sum())
        weights = (n / (2 * (n - frauds)), n / (2 * frauds))
        return train, validation, test, y, parts.validation.y, parts.test.y, *weights

    def report(name: str, y_test: Any, probs: Any, *_: Any) -> None:
        scores.append((name, np.asarray(probs, dtype=np.float64)))

    module.load, module.report = load, report  # type: ignore[attr-defined]
    saved = sys.modules.get("seed_common")
    sys.modules["seed_common"] = module
    try:
        yield scores
    finally:
        if saved is None:
            sys.modules.pop("seed_common", None)
        else:
            sys.modules["seed_common"] = saved


def gbdt(anchors: Path, parts: Any) -> list[tuple[str, int, np.ndarray]]:
    """baseline_gbdt.py, run as it is on ``parts``: (model, seed, test probabilities)."""
    with answered_load(parts) as scores, contextlib.redirect_stdout(io.StringIO()):
        runpy.run_path(str(anchors / "baseline_gbdt.py"), run_name="__main__")
    found = []
    for name, p in scores:
        model = "xgboost" if name.startswith("xgb") else "lightgbm"
        seed = int(name.split("seed")[1].split("(")[0])
        found.append((model, seed, p))
    return found


def fraudmlp(
    backend: str, case: Case, seed: int, extra: list[str], work: Path, label: str = ""
) -> Path:
    """Train in a subprocess, as a user would; return the saved model."""
    out = work / f"{backend}-{case.protocol}-{case.split_seed}-{case.path.stem}-{seed}{label}"
    command = [sys.executable, "-m", "fraudkeras", "train", "--backend", backend,
               "--data", str(case.path), "--split", case.kind, "--split-seed",
               str(case.split_seed), "--seed", str(seed), "--out", str(out), "--quiet",
               "--no-report", "--force", *extra]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        raise SystemExit(f"{backend} {case.name} seed {seed} failed:\n{completed.stderr[-2000:]}")
    return out / "model.keras"


def recalibrated(path: Path, parts: Any, method: str) -> np.ndarray:
    """Test probabilities of the model at ``path`` with its calibration map refitted
    on the validation split by ``method`` (what ``--calibration METHOD`` would fit)."""
    from scipy.special import logit

    from fraudkeras.metrics.calibration import fit_map
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    model = load_model(path)
    assert model.calibration is not None
    model.calibration.reset()
    raw = fraud_probabilities(model, parts.validation.x)
    z = logit(np.clip(raw, 1e-300, 1 - 1e-16))
    model.calibration.set_map(fit_map(method, z, parts.validation.y, model.class_weight))
    return fraud_probabilities(model, parts.test.x)


def summary_table(results: list[dict[str, Any]], protocols: list[str]) -> list[str]:
    from fraudkeras.metrics.protocol import mean_interval

    lines = ["| protocol | model | runs | median PR-AUC | "
             + " | ".join(label for _, label, _ in METRICS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(METRICS)]  # fmt: skip
    for protocol in protocols:
        rows = [r for r in results if r["protocol"] == protocol]
        for model in dict.fromkeys(r["model"] for r in rows):
            mine = [r for r in rows if r["model"] == model]
            cells = []
            for key, _, fmt in METRICS:
                got = mean_interval([r[key] for r in mine])
                cells.append(f"{fmt.format(got['mean'])} [{fmt.format(got['low'])}, "
                             f"{fmt.format(got['high'])}]")  # fmt: skip
            median = float(np.median([r["pr_auc"] for r in mine]))
            lines.append(f"| {protocol} | {model} | {len(mine)} | {median:.4f} | "
                         + " | ".join(cells) + " |")  # fmt: skip
    return lines


def lever_table(results: list[dict[str, Any]], variants: list[str]) -> list[str]:
    """Each variant's paired difference from the default model (same backend, case
    and seed): mean and 95 % interval of PR-AUC, Brier, ECE and the p x Amount rule's cost."""
    from fraudkeras.metrics.protocol import mean_interval

    keys = (("pr_auc", "{:+.4f}"), ("brier", "{:+.6f}"), ("ece", "{:+.6f}"),
            ("cost_expected_rule", "{:+,.0f}"))  # fmt: skip
    lines = ["| protocol | backend | lever | runs | ΔPR-AUC | ΔBrier | ΔECE | Δcost p x Amount |",
             "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    base = {(r["protocol"], r["model"], r["case"], r["seed"]): r for r in results}
    for variant in variants:
        mine = [r for r in results if r.get("variant") == variant]
        for protocol, model in dict.fromkeys((r["protocol"], r["base_model"]) for r in mine):
            pairs = [(r, base[(protocol, model, r["case"], r["seed"])]) for r in mine
                     if r["protocol"] == protocol and r["base_model"] == model]  # fmt: skip
            cells = []
            for key, fmt in keys:
                got = mean_interval([r[key] - b[key] for r, b in pairs])
                cells.append(f"{fmt.format(got['mean'])} [{fmt.format(got['low'])}, "
                             f"{fmt.format(got['high'])}]")  # fmt: skip
            backend = model.removeprefix("fraudmlp-")
            lines.append(f"| {protocol} | {backend} | {variant} | {len(pairs)} | "
                         + " | ".join(cells) + " |")  # fmt: skip
    return lines


def variant(text: str) -> tuple[str, list[str]]:
    """``NAME=ARGS`` of ``--variant``."""
    name, sep, options = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f'expected NAME="--option value", got {text!r}')
    return name, shlex.split(options)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS)
    parser.add_argument("--backends", nargs="*", default=["jax", "torch", "tensorflow"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[42, 7, 11])
    parser.add_argument("--protocols", nargs="+", default=["stratified", "time", "prequential"],
                        choices=["stratified", "time", "prequential"])  # fmt: skip
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--test-hours", type=float, default=3.0)
    parser.add_argument("--gap-hours", type=float, default=2.0)
    parser.add_argument("--k", type=int, default=50, help="alerts per day for precision@k")
    parser.add_argument("--review-cost", type=float, default=5.0)
    parser.add_argument("--no-gbdt", action="store_true", help="skip baseline_gbdt.py")
    parser.add_argument("--train-args", default="", help="extra `fraudkeras train` options")
    parser.add_argument(
        "--variant",
        type=variant,
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help="also train with these extra options; report the paired effect",
    )
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument(
        "--calibrations",
        nargs="*",
        default=[],
        help="also refit the default model's calibration by these methods",
    )
    parser.add_argument("--keep", type=Path, help="keep every trained run in this folder")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")  # this process only reads models
    from fraudkeras.data.splits import split as split_data
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    table = load_transactions(args.data)
    extra = shlex.split(args.train_args)
    results: list[dict[str, Any]] = []

    def record(case: Case, model: str, seed: int, parts: Any, p: np.ndarray,
               **labels: str) -> None:  # fmt: skip
        test = parts.test
        got = measure(test.y, p, test.amounts, test.times, args.k, args.review_cost)
        results.append({"protocol": case.protocol, "case": case.name, "model": model,
                        "seed": seed, **labels, **got})  # fmt: skip
        print(f"  {case.protocol:11s} {case.name:34s} {model:18s} seed {seed}: "
              f"PR-AUC {got['pr_auc']:.4f} Brier {got['brier']:.6f} ECE {got['ece']:.6f} "
              f"cost@0.5 {got['cost_at_0.5']:,.0f} rule {got['cost_expected_rule']:,.0f}",
              flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for case in cases(args, table, scratch):
            case_table = table if case.path == Path(args.data) else load_transactions(case.path)
            parts = split_data(case_table, case.kind, case.split_seed)
            print(f"{case.protocol} / {case.name}: {len(parts.train.y):,d} train, "
                  f"{len(parts.validation.y):,d} validation, {len(parts.test.y):,d} test rows "
                  f"({int(parts.test.y.sum())} test frauds)", flush=True)  # fmt: skip
            if not args.no_gbdt:
                for model, seed, p in gbdt(args.anchors, parts):
                    record(case, model, seed, parts, p)
            for backend in args.backends:
                for seed in args.seeds:
                    path = fraudmlp(backend, case, seed, extra, scratch)
                    p = fraud_probabilities(load_model(path), parts.test.x)
                    record(case, f"fraudmlp-{backend}", seed, parts, p)
                    for method in args.calibrations:
                        record(case, f"fraudmlp-{backend}-calibration_{method}", seed, parts,
                               recalibrated(path, parts, method), variant=f"calibration_{method}",
                               base_model=f"fraudmlp-{backend}")  # fmt: skip
                    for name, options in args.variant:
                        path = fraudmlp(backend, case, seed, [*extra, *options], scratch,
                                        f"-{name}")  # fmt: skip
                        p = fraud_probabilities(load_model(path), parts.test.x)
                        record(case, f"fraudmlp-{backend}-{name}", seed, parts, p,
                               variant=name, base_model=f"fraudmlp-{backend}")  # fmt: skip

    print(f"\n{started}; data {Path(args.data).name}; seeds {args.seeds}; split seeds "
          f"{args.split_seeds}; folds {args.folds} x {args.test_hours:g} h after a "
          f"{args.gap_hours:g} h gap; k {args.k}/day; review cost {args.review_cost:g}; "
          f"train args {args.train_args!r}")  # fmt: skip
    print("mean [95 % interval] over runs (seeds x split seeds x folds):")
    print("\n".join(summary_table(results, args.protocols)))
    levers = [name for name, _ in args.variant] + [f"calibration_{m}" for m in args.calibrations]
    if levers:
        print("\nlevers: paired difference from the default model, mean [95 % interval]:")
        print("\n".join(lever_table(results, levers)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
