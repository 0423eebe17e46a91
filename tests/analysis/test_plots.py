"""Every picture: a PNG that opens, has the promised size and is not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fraudkeras.analysis import plots
from fraudkeras.metrics.thresholds import curve
from helpers import assert_real_png


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(int)
    p = np.clip(rng.normal(0.2 + 0.6 * y, 0.2), 0, 1)
    return y, p, np.round(rng.lognormal(3, 1.5, 2000), 2)


def test_curves_and_confusion_matrix(predictions, tmp_path: Path) -> None:
    y, p, amounts = predictions
    for draw, name in ((plots.pr_curve, "pr.png"), (plots.roc_curve, "roc.png"),
                       (plots.confusion, "cm.png")):  # fmt: skip
        assert_real_png(draw(y, p, 0.5, tmp_path / name))
    assert_real_png(plots.threshold_curves(curve(y, p, amounts), 5.0, 0.5, tmp_path / "t.png"))


def test_threshold_curves_survive_probabilities_of_exactly_0_and_1(tmp_path: Path) -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.0, 0.2, 1.0, 0.7, 1.0, 0.0])
    path = plots.threshold_curves(curve(y, p, np.ones(6)), 1.0, 1.0, tmp_path / "edge.png")
    assert_real_png(path)


def test_history_and_importance(tmp_path: Path) -> None:
    history = {"loss": [0.5, 0.3, 0.2], "val_loss": [0.4, 0.35, 0.36],
               "val_pr_auc": [0.6, 0.7, 0.68], "val_roc_auc": [0.9, 0.93, 0.94]}  # fmt: skip
    assert_real_png(plots.history(history, 2, tmp_path / "h.png"))
    ranking = [{"feature": f"V{i}", "mean_drop": 0.1 / i, "std": 0.01} for i in range(1, 29)]
    assert_real_png(plots.importance(ranking, tmp_path / "i.png"))


def test_compare_chart(tmp_path: Path) -> None:
    def metrics(pr: float, seconds: float) -> dict:
        return {"test": {"pr_auc": pr, "roc_auc": 0.97, "at_tuned": {"f1": 0.8}},
                "median_epoch_seconds": seconds}  # fmt: skip

    result = {"metrics": {"jax": metrics(0.83, 0.15), "torch": metrics(0.82, 2.0)}}
    assert_real_png(plots.compare_chart(result, tmp_path / "compare.png"))


def test_nothing_is_left_behind_when_drawing_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        plots.pr_curve(np.array([0, 1]), np.array([0.1]), 0.5, tmp_path / "bad.png")
    assert list(tmp_path.iterdir()) == []
