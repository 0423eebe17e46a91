"""Quality benchmark: FraudMLP against XGBoost and LightGBM on the very same splits.

For each split (stratified 70/15/15 with split seed 42, and time-ordered), trains
FraudMLP for several seeds under every named backend (each run its own
``fraudkeras train`` process, default settings unless ``--train-args`` says
otherwise) and, in this process, XGBoost and LightGBM with the protocol of
``../shared/anchors/baseline_gbdt.py`` (early stopping on validation average
precision, same hyper-parameters, seeds as given). Prints test PR-AUC per seed
with a bootstrap 95 % interval (test rows resampled within each class, 500
times: with ~74 test frauds one fraud moves PR-AUC by about 0.01), then the
medians per model, split and backend.

    pip install '.[bench]'   # xgboost, lightgbm
    python scripts/bench_quality.py [--data PATH] [--seeds 1 2 3] [--splits stratified time]
        [--backends jax torch tensorflow] [--train-args "--epochs 20"] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "creditcard.parquet"
BOOTSTRAP_ROUNDS = 500


def bootstrap_interval(y: np.ndarray, p: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of test PR-AUC, resampling rows within each class."""
    rng = np.random.default_rng(seed)
    frauds, normals = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values = []
    for _ in range(BOOTSTRAP_ROUNDS):
        rows = np.concatenate([rng.choice(frauds, len(frauds)), rng.choice(normals, len(normals))])
        values.append(average_precision_score(y[rows], p[rows]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def fraudmlp(backend: str, data: str, split: str, seed: int, extra: list[str], work: Path) -> Any:
    """Train in a subprocess; return the run's test probabilities and metrics."""
    out = work / f"{backend}-{split}-{seed}"
    command = [sys.executable, "-m", "fraudkeras", "train", "--backend", backend, "--data", data]
    command += ["--split", split, "--seed", str(seed), "--out", str(out), "--quiet"]
    command += ["--no-report", "--force", *extra]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{backend} {split} seed {seed} failed:\n{completed.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return out / "model.keras", metrics


def gbdt(kind: str, parts: Any, seed: int) -> np.ndarray:
    """Test probabilities of XGBoost or LightGBM, as baseline_gbdt.py trains them."""
    train, val, test = parts.train, parts.validation, parts.test
    if kind == "xgboost":
        import xgboost as xgb

        clf = xgb.XGBClassifier(
            n_estimators=2000, learning_rate=0.05, max_depth=6, subsample=0.8,
            colsample_bytree=0.8, eval_metric="aucpr", early_stopping_rounds=100, n_jobs=2,
            random_state=seed, tree_method="hist",
        )  # fmt: skip
        clf.fit(train.x, train.y, eval_set=[(val.x, val.y)], verbose=False)
    else:
        import lightgbm as lgb

        clf = lgb.LGBMClassifier(
            n_estimators=2000, learning_rate=0.02, num_leaves=31, subsample=0.8,
            subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=2, verbose=-1,
        )  # fmt: skip
        clf.fit(
            train.x, train.y, eval_set=[(val.x, val.y)], eval_metric="average_precision",
            callbacks=[lgb.early_stopping(100, verbose=False)],
        )  # fmt: skip
    return np.asarray(clf.predict_proba(test.x)[:, 1], dtype=np.float64)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--backends", nargs="+", default=["jax", "torch", "tensorflow"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--splits", nargs="+", default=["stratified", "time"])
    parser.add_argument("--gbdt", nargs="*", default=["xgboost", "lightgbm"])
    parser.add_argument("--train-args", default="", help="extra `fraudkeras train` options")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")  # this process only reads models
    from fraudkeras.data.splits import split as split_data
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    table = load_transactions(args.data)
    extra = shlex.split(args.train_args)
    results: list[dict[str, Any]] = []

    def record(model: str, split: str, seed: int, y: Any, p: Any, **more: Any) -> None:
        low, high = bootstrap_interval(y, p)
        pr_auc = float(average_precision_score(y, p))
        results.append(
            dict(model=model, split=split, seed=seed, pr_auc=pr_auc, low=low, high=high, **more)
        )
        print(
            f"  {model:18s} {split:10s} seed {seed}: PR-AUC {pr_auc:.4f} [{low:.3f}, {high:.3f}]",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as scratch:
        for split in args.splits:
            parts = split_data(table, split, 42)
            y = parts.test.y
            for kind in args.gbdt:
                for seed in args.seeds:
                    record(kind, split, seed, y, gbdt(kind, parts, seed))
            for backend in args.backends:
                for seed in args.seeds:
                    path, metrics = fraudmlp(backend, args.data, split, seed, extra, Path(scratch))
                    p = fraud_probabilities(load_model(path), parts.test.x)
                    record(f"fraudmlp-{backend}", split, seed, y, p, epochs=metrics["epochs_run"])

    print(f"\nseeds {args.seeds}; data {Path(args.data).name}; train args: {args.train_args!r}")
    print("| split | model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | median |")
    print("|---|---|" + "---:|" * (len(args.seeds) + 1))
    for split in args.splits:
        for model in dict.fromkeys(r["model"] for r in results if r["split"] == split):
            rows = [r for r in results if r["split"] == split and r["model"] == model]
            cells = [f"{r['pr_auc']:.4f} [{r['low']:.3f}, {r['high']:.3f}]" for r in rows]
            median = statistics.median(r["pr_auc"] for r in rows)
            print(f"| {split} | {model} | " + " | ".join(cells) + f" | {median:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
