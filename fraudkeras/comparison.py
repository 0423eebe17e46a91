"""``fraudkeras compare``: the notebook's backend comparison for all three backends.

Each backend trains in its own ``fraudkeras train`` process on the same data, split
and seed; then each backend loads every other backend's ``.keras`` file and the
predictions on the test split are compared. The trainings are independent: the
same seed draws different initial weights and shuffles on each backend, so their
metrics differ by seed noise. Whether the backends compute the same training is
what ``fraudkeras parity`` (:mod:`fraudkeras.parity`) checks. This module never
imports Keras.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core.backend import BACKENDS, is_installed
from fraudkeras._core.errors import BackendError, FraudKerasError
from fraudkeras._core.files import atomic_dir, check_output_dir, read_json, write_json
from fraudkeras._core.subprocesses import predict_under, python_under
from fraudkeras.data.splits import split
from fraudkeras.data.tables import load_transactions
from fraudkeras.metrics.tables import METRIC_ROWS, cell, lookup
from fraudkeras.runs.layout import CONFIG_FILE, METRICS_FILE, MODEL_FILE

log = logging.getLogger("fraudkeras")
COMPARE_JSON, COMPARE_MD, COMPARE_PNG = "compare.json", "compare.md", "compare.png"
#: what the comparison is, said wherever its numbers are shown
INDEPENDENT = (
    "Each backend trained independently (its own initial weights and shuffles from the "
    "same seed), so the metrics differ by seed noise as well as by backend; "
    "`fraudkeras parity` checks that the backends compute the same training."
)
_QUALITY = METRIC_ROWS[:3]  # precision, recall, F1
_ROWS = (
    *((f"{label} @ 0.5", ("test", "at_0.5", key), fmt) for label, key, fmt in _QUALITY),
    ("tuned threshold", ("tuned_threshold",), "{:.4f}"),
    *((f"{label} @ tuned", ("test", "at_tuned", key), fmt) for label, key, fmt in _QUALITY),
    ("cost @ tuned", ("test", "at_tuned", "cost"), "{:,.2f}"),
    ("savings @ tuned", ("test", "at_tuned", "savings"), "{:,.2f}"),
    ("PR-AUC", ("test", "pr_auc"), "{:.4f}"),
    ("ROC-AUC", ("test", "roc_auc"), "{:.4f}"),
    ("epochs run", ("epochs_run",), "{:d}"),
    ("training seconds", ("train_seconds",), "{:.2f}"),
    ("median epoch seconds", ("median_epoch_seconds",), "{:.3f}"),
    ("peak RSS MiB", ("peak_rss_mb",), "{:.0f}"),
)


def compare(
    data: str | os.PathLike[str] = "auto",
    *,
    out: str | os.PathLike[str],
    backends: tuple[str, ...] = BACKENDS,
    force: bool = False,
    train_args: tuple[str, ...] = (),
    plots: bool = True,
) -> dict[str, Any]:
    """Train under each backend, cross-load the models, write compare.json/compare.md.

    ``train_args`` are passed to every ``fraudkeras train`` (``--epochs 3``, ...);
    each run is trained with ``--no-report``. With ``plots``, ``compare.png``
    charts the test metrics and epoch times per backend.
    A backend that is not installed, or whose training fails, is reported with
    the reason instead of stopping the comparison; if none trains, BackendError.
    """
    target = Path(out)
    check_output_dir(target, force=force)
    transactions = load_transactions(data)  # fail early on bad data, before any training
    kind, seed = (
        _option(train_args, "--split", "stratified"),
        _option(train_args, "--split-seed", "42"),
    )
    split(transactions, kind, int(seed))  # and on data too small to split
    with atomic_dir(target, force=force) as scratch:
        status: dict[str, str] = {}
        metrics: dict[str, dict[str, Any]] = {}
        for number, backend in enumerate(backends, 1):
            if not is_installed(backend):
                status[backend] = "skipped: not installed"
                continue
            log.info("training under %s (%d of %d), an independent run", backend, number,
                     len(backends))  # fmt: skip
            try:
                metrics[backend] = _train_under(
                    backend, str(data), scratch / "runs" / backend, train_args
                )
                status[backend] = "ok"
            except FraudKerasError as error:
                status[backend] = f"failed: {error}"
        trained = list(metrics)
        if not trained:
            reasons = "; ".join(f"{backend}: {why}" for backend, why in status.items())
            raise BackendError(f"no backend trained ({reasons})")
        config = read_json(scratch / "runs" / trained[0] / CONFIG_FILE)
        log.info("loading every model under every backend (%s)", ", ".join(trained))
        agreement = _agreement(transactions, config, trained, scratch)
        result = {
            "data": transactions.origin,
            "split": config.get("split"),
            "seed": config.get("seed"),
            "epochs": config.get("epochs"),
            "status": status,
            "metrics": metrics,
            "max_abs_diff": agreement,
        }
        write_json(scratch / COMPARE_JSON, result)
        (scratch / COMPARE_MD).write_text(format_markdown(result))
        if plots:
            from fraudkeras.analysis.plots import compare_chart

            compare_chart(result, scratch / COMPARE_PNG)
    return result


def _option(args: tuple[str, ...], name: str, default: str) -> str:
    """The value of ``name`` in a ``fraudkeras train`` argument list (the last one wins)."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]
    return values[-1] if values else default


def _train_under(backend: str, data: str, run: Path, train_args: tuple[str, ...]) -> dict[str, Any]:
    """``fraudkeras train`` (the user's own command) under ``backend``, no time limit."""
    done = python_under(
        backend, "fraudkeras", "train", "--backend", backend, "--data", data,
        "--out", run, "--quiet", "--no-report", *train_args, timeout=None,
    )  # fmt: skip
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("fraudkeras: error: ") if lines else "no output"
        raise BackendError(reason)
    metrics: dict[str, Any] = read_json(run / METRICS_FILE)
    return metrics


def _agreement(
    transactions: Any, config: dict[str, Any], trained: list[str], scratch: Path
) -> dict[str, dict[str, float]]:
    """max |p| difference on the test split: model trained under A, loaded under B."""
    test = split(transactions, config["split"], config["split_seed"]).test
    models = [scratch / "runs" / backend / MODEL_FILE for backend in trained]
    with tempfile.TemporaryDirectory() as work:
        loaded = {b: predict_under(b, models, test.x, Path(work)) for b in trained}
    return {
        source: {
            loader: float(np.max(np.abs(loaded[loader][i] - loaded[source][i])))
            for loader in trained
        }
        for i, source in enumerate(trained)
    }


def format_markdown(result: dict[str, Any]) -> str:
    """The comparison table (one column per backend) and the agreement matrix."""
    backends = list(result["status"])
    header = "| metric | " + " | ".join(backends) + " |"
    lines = [
        f"# Backend comparison\n\ndata: {result['data']}; split: {result['split']}; "
        f"seed: {result['seed']}; epochs: {result['epochs']}\n\n{INDEPENDENT}\n",
        header,
        "|---|" + "---:|" * len(backends),
    ]
    for label, path, fmt in _ROWS:
        cells = [
            cell(lookup(result["metrics"][b], path), fmt) if b in result["metrics"] else "-"
            for b in backends
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| status | " + " | ".join(result["status"][b] for b in backends) + " |")
    trained = list(result["max_abs_diff"])
    if trained:
        lines += [
            "\nmax |Δp| on the test split: model trained under the row's backend, "
            "loaded under the column's\n",
            "| trained \\ loaded | " + " | ".join(trained) + " |",
            "|---|" + "---:|" * len(trained),
        ]
        for source in trained:
            row = result["max_abs_diff"][source]
            lines.append(f"| {source} | " + " | ".join(f"{row[b]:.1e}" for b in trained) + " |")
    return "\n".join(lines) + "\n"
