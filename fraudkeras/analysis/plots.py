"""The report's pictures, as PNG files of a fixed size (:data:`SIZE_PX`).

Figures are built with matplotlib's object API and its Agg canvas, never
``pyplot``: no global state, no display needed, and a user's own interactive
backend is left alone. The curves come from scikit-learn's display classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fraudkeras._core.files import atomic_file
from fraudkeras.metrics.thresholds import Curve

DPI = 100
FIGSIZE = (6.4, 4.8)
SIZE_PX = (640, 480)  # width, height of every PNG written here
_MARK = {"color": "crimson", "zorder": 5}
_EDGE = 1e-7  # thresholds are drawn within [_EDGE, 1 - _EDGE] on logit axes


def new_figure(ncols: int = 1) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    return figure, figure.subplots(1, ncols)


def save_figure(figure: Any, path: Path) -> Path:
    with atomic_file(path) as scratch:
        figure.savefig(scratch, format="png", dpi=DPI)
    return path


def pr_curve(labels: np.ndarray, probabilities: np.ndarray, threshold: float, path: Path) -> Path:
    """Precision against recall, the chosen threshold marked."""
    from sklearn.metrics import PrecisionRecallDisplay, precision_score, recall_score

    figure, ax = new_figure()
    PrecisionRecallDisplay.from_predictions(labels, probabilities, ax=ax, name="FraudMLP")
    flagged = probabilities >= threshold
    ax.scatter(
        recall_score(labels, flagged, zero_division=0),
        precision_score(labels, flagged, zero_division=0),
        label=f"threshold {threshold:.4f}",
        **_MARK,
    )
    ax.set_title("Precision-recall curve (test split)")
    ax.legend(loc="lower left")
    return save_figure(figure, path)


def roc_curve(labels: np.ndarray, probabilities: np.ndarray, threshold: float, path: Path) -> Path:
    """True-positive rate against false-positive rate, the chosen threshold marked."""
    from sklearn.metrics import RocCurveDisplay

    figure, ax = new_figure()
    RocCurveDisplay.from_predictions(labels, probabilities, ax=ax, name="FraudMLP")
    flagged = probabilities >= threshold
    fpr = float(flagged[labels == 0].mean()) if (labels == 0).any() else 0.0
    tpr = float(flagged[labels == 1].mean()) if (labels == 1).any() else 0.0
    ax.scatter(fpr, tpr, label=f"threshold {threshold:.4f}", **_MARK)
    # the interesting part is a false-positive rate far below 1 %: log scale above 1e-4
    ax.set_aspect("auto")  # the display asks for a square plot, which squashes a log axis
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlim(0, 1)
    ax.set_title("ROC curve (test split; false-positive rate on a log scale)")
    ax.legend(loc="lower right")
    return save_figure(figure, path)


def confusion(labels: np.ndarray, probabilities: np.ndarray, threshold: float, path: Path) -> Path:
    """The confusion matrix at the chosen threshold."""
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, ax = new_figure()
    ConfusionMatrixDisplay.from_predictions(
        labels,
        (probabilities >= threshold).astype(int),
        labels=[0, 1],
        display_labels=["normal", "fraud"],
        ax=ax,
        colorbar=False,
        cmap="Blues",
    )
    ax.set_title(f"Confusion matrix (test split, threshold {threshold:.4f})")
    return save_figure(figure, path)


def history(history: dict[str, list[float]], best_epoch: int, path: Path) -> Path:
    """Training and validation loss, and validation PR-AUC, per epoch."""
    figure, (loss_ax, auc_ax) = new_figure(ncols=2)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history:
            epochs = np.arange(1, len(history[key]) + 1)
            loss_ax.plot(epochs, history[key], marker="o", label=label)
    for key, label in (("val_pr_auc", "validation PR-AUC"), ("val_roc_auc", "validation ROC-AUC")):
        if key in history:
            epochs = np.arange(1, len(history[key]) + 1)
            auc_ax.plot(epochs, history[key], marker="o", label=label)
    for ax, title in ((loss_ax, "Weighted loss"), (auc_ax, "Validation AUC")):
        ax.axvline(best_epoch, linestyle="--", color="gray", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    return save_figure(figure, path)


def threshold_curves(points: Curve, review_cost: float, threshold: float, path: Path) -> Path:
    """Precision, recall, F1 and expected cost against the threshold (validation)."""
    figure, ax = new_figure()
    # index 0 is "flag nothing", above every probability; the logit axis needs 0 < t < 1
    t = np.clip(points.thresholds[1:], _EDGE, 1 - _EDGE)
    for values, label in (
        (points.precision[1:], "precision"),
        (points.recall[1:], "recall"),
        (points.f1[1:], "F1"),
    ):
        ax.step(t, values, where="post", label=label)
    ax.set_xlabel("threshold (flag p >= threshold)")
    ax.set_ylabel("precision / recall / F1")
    ax.set_xscale("logit")
    cost_ax = ax.twinx()
    cost_ax.step(t, points.cost(review_cost)[1:], where="post", color="black", label="cost")
    cost_ax.set_ylabel(f"expected cost (missed amount + {review_cost:g} per false alarm)")
    ax.axvline(
        float(np.clip(threshold, _EDGE, 1 - _EDGE)), **_MARK, label=f"chosen {threshold:.4f}"
    )
    handles = ax.get_legend_handles_labels()
    cost_handles = cost_ax.get_legend_handles_labels()
    ax.legend(handles[0] + cost_handles[0], handles[1] + cost_handles[1], loc="center left")
    ax.set_title("Threshold choice (validation split)")
    return save_figure(figure, path)


def importance(ranking: Sequence[dict[str, Any]], path: Path, *, top: int = 15) -> Path:
    """The ``top`` permutation importances (drop in PR-AUC), with their spread."""
    figure, ax = new_figure()
    shown = list(ranking[:top])[::-1]
    ax.barh(
        [row["feature"] for row in shown],
        [row["mean_drop"] for row in shown],
        xerr=[row["std"] for row in shown],
        color="steelblue",
    )
    ax.set_xlabel("drop in validation PR-AUC when shuffled (mean ± std)")
    ax.set_title(f"Permutation importance (top {len(shown)})")
    return save_figure(figure, path)


def compare_chart(result: dict[str, Any], path: Path) -> Path:
    """Test metrics and median epoch time per backend, from a compare result."""
    figure, (metric_ax, time_ax) = new_figure(ncols=2)
    backends = list(result["metrics"])
    names = (("PR-AUC", ("test", "pr_auc")), ("ROC-AUC", ("test", "roc_auc")),
             ("F1 @ tuned", ("test", "at_tuned", "f1")))  # fmt: skip
    width = 0.8 / max(len(backends), 1)
    for i, backend in enumerate(backends):
        values = []
        for _, keys in names:
            value: Any = result["metrics"][backend]
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            values.append(value if value is not None else 0.0)
        ax_positions = np.arange(len(names)) + (i - (len(backends) - 1) / 2) * width
        metric_ax.bar(ax_positions, values, width, label=backend)
    metric_ax.set_xticks(np.arange(len(names)), [name for name, _ in names])
    metric_ax.set_ylim(0, 1)
    metric_ax.set_title("Test metrics")
    metric_ax.legend(loc="lower right")
    seconds = [result["metrics"][b].get("median_epoch_seconds") or 0.0 for b in backends]
    time_ax.bar(backends, seconds, color="gray")
    time_ax.set_title("Median epoch seconds")
    return save_figure(figure, path)


def reliability(
    bins: dict[str, dict[str, list[float]]], path: Path, title: str = "test split"
) -> Path:
    """Reliability diagram: each equal-mass bin's fraud rate against its mean
    probability, one line per named set of bins (before and after calibration),
    on log axes (most bins hold probabilities far below 1 %)."""
    figure, ax = new_figure()
    floor = 1e-6
    lowest = min(min(b["mean_probability"]) for b in bins.values())
    low = max(floor, lowest / 2)
    ax.plot([low, 1], [low, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, b in bins.items():
        x = np.maximum(np.asarray(b["mean_probability"]), floor)
        y = np.maximum(np.asarray(b["fraud_rate"]), floor)  # a bin without frauds: at the floor
        ax.plot(x, y, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mean predicted probability (equal-mass bin)")
    ax.set_ylabel(f"observed fraud rate (bins without a fraud at {floor:g})")
    ax.set_title(f"Reliability ({title})")
    ax.legend(loc="upper left")
    return save_figure(figure, path)
