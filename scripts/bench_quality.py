"""Quality benchmark: median test PR-AUC and tuned-threshold F1 per backend.

Trains FraudMLP on the full table (stratified split, split seed 42) for several
training seeds under every installed backend, each run in its own
``fraudkeras train`` process, and prints the medians against the targets
(PR-AUC >= 0.82, F1 at the tuned threshold >= 0.80).

    python scripts/bench_quality.py [--data PATH] [--seeds 1 2 3] [--class-weight none sqrt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
TARGETS = {"pr_auc": 0.82, "f1_tuned": 0.80}


def run_once(
    backend: str, data: str, seed: int, class_weight: str, epochs: int, work: Path
) -> dict:
    out = work / f"{backend}-{class_weight.replace(':', '_').replace(',', '_')}-{seed}"
    command = [
        sys.executable,
        "-m",
        "fraudkeras",
        "train",
        "--backend",
        backend,
        "--data",
        data,
        "--seed",
        str(seed),
        "--class-weight",
        class_weight,
        "--epochs",
        str(epochs),
        "--out",
        str(out),
        "--quiet",
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{backend} seed {seed} failed:\n{completed.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "pr_auc": metrics["test"]["pr_auc"],
        "roc_auc": metrics["test"]["roc_auc"],
        "f1_tuned": metrics["test"]["at_tuned"]["f1"],
        "f1_0.5": metrics["test"]["at_0.5"]["f1"],
        "epochs_run": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--backends", nargs="+", default=["jax", "torch", "tensorflow"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--class-weight", nargs="+", default=["none"])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for class_weight in args.class_weight:
            for backend in args.backends:
                runs = []
                for seed in args.seeds:
                    run = run_once(
                        backend, args.data, seed, class_weight, args.epochs, Path(scratch)
                    )
                    runs.append(run)
                    print(
                        f"  {backend} {class_weight} seed {seed}: PR-AUC {run['pr_auc']:.4f} "
                        f"F1@tuned {run['f1_tuned']:.4f} epochs {run['epochs_run']}",
                        flush=True,
                    )
                median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append((backend, class_weight, median))
                print(
                    f"{backend:10s} {class_weight:9s} "
                    + " ".join(
                        f"{k}={median[k]:.4f}" for k in ("pr_auc", "roc_auc", "f1_tuned", "f1_0.5")
                    )
                    + f" train_s={median['train_seconds']:.1f}",
                    flush=True,
                )

    print(f"\nmedian over seeds {args.seeds}, {args.epochs} epochs, data {Path(args.data).name}")
    print("| backend | class weight | PR-AUC | ROC-AUC | F1 @ tuned | F1 @ 0.5 | train s | met |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for backend, class_weight, m in rows:
        met = all(m[k] >= v for k, v in TARGETS.items())
        print(
            f"| {backend} | {class_weight} | {m['pr_auc']:.4f} | {m['roc_auc']:.4f} | "
            f"{m['f1_tuned']:.4f} | {m['f1_0.5']:.4f} | {m['train_seconds']:.1f} | "
            f"{'yes' if met else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
