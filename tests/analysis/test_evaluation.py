from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from fraudkeras.analysis.evaluation import evaluate
from fraudkeras.metrics.classification import at_threshold
from fraudkeras.metrics.tables import format_table


def synthetic(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int32)
    p = np.clip(rng.normal(0.2 + 0.5 * y, 0.2), 0, 1)
    return y, p


def test_at_threshold_matches_sklearn() -> None:
    y, p = synthetic(1)
    got = at_threshold(y, p, 0.4)
    predicted = p >= 0.4
    tn, fp, fn, tp = confusion_matrix(y, predicted).ravel()
    assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (tn, fp, fn, tp)
    assert got["precision"] == pytest.approx(precision_score(y, predicted))
    assert got["recall"] == pytest.approx(recall_score(y, predicted))
    assert got["f1"] == pytest.approx(f1_score(y, predicted))


def test_nothing_flagged_is_zero_not_an_error() -> None:
    y, p = synthetic(2)
    got = at_threshold(y, p, 1.5)
    assert (got["precision"], got["recall"], got["f1"], got["tp"], got["fp"]) == (
        0.0,
        0.0,
        0.0,
        0,
        0,
    )


def test_evaluate_reproduces_the_runs_metrics(trained_run) -> None:
    result = evaluate(trained_run.run_dir)
    recorded = json.loads((trained_run.run_dir / "metrics.json").read_text())
    assert result["data_matches"] is True
    assert result["tuned_threshold"] == pytest.approx(recorded["tuned_threshold"], abs=1e-6)
    assert result["test"]["pr_auc"] == pytest.approx(recorded["test"]["pr_auc"], abs=1e-6)
    assert result["test"]["at_tuned"]["tp"] == recorded["test"]["at_tuned"]["tp"]


def test_evaluate_warns_when_the_data_differs(
    trained_run, small_frame: pl.DataFrame, tmp_path, caplog
) -> None:
    other = tmp_path / "other.parquet"
    small_frame.with_columns(pl.col("Amount") + 1.0).write_parquet(other)
    with caplog.at_level(logging.WARNING, logger="fraudkeras"):
        result = evaluate(trained_run.run_dir, data=other)
    assert result["data_matches"] is False
    assert "fingerprint mismatch" in caplog.text


def test_table_shows_every_number(trained_run) -> None:
    table = format_table(trained_run.metrics)
    test = trained_run.metrics["test"]
    assert f"PR-AUC {test['pr_auc']:.4f}" in table and f"ROC-AUC {test['roc_auc']:.4f}" in table
    for key in ("precision", "recall", "f1"):
        assert f"{test['at_tuned'][key]:.4f}" in table
    assert str(test["at_0.5"]["tn"]) in table


def validation_scores(run) -> tuple[np.ndarray, np.ndarray]:
    """The labels and the saved model's probabilities on the run's validation split:
    the scores a threshold is chosen on (their agreement with a NumPy forward pass is
    tests/deploy/test_artifacts.py's)."""
    from fraudkeras.data.splits import split
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    config = json.loads((run / "config.json").read_text())
    validation = split(load_transactions(config["data"]), "stratified", 42).validation
    return validation.y, fraud_probabilities(load_model(run / "model.keras"), validation.x)


def test_retune_records_the_new_threshold_everywhere(exported, tmp_path) -> None:
    import shutil

    from fraudkeras.analysis.evaluation import retune
    from fraudkeras.metrics.thresholds import ThresholdPolicy

    run = tmp_path / "run"
    shutil.copytree(exported[0], run)
    policy = ThresholdPolicy("recall", target_recall=0.8)
    metrics = retune(run, policy)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["tuned_threshold"] == metrics["tuned_threshold"]
    assert saved["threshold_policy"] == {"strategy": "recall", "target_recall": 0.8,
                                         "review_cost": 5.0, "chargeback_fee": 0.0}  # fmt: skip
    assert json.loads((run / "config.json").read_text())["threshold_strategy"] == "recall"
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["thresholds"]["tuned"] == metrics["tuned_threshold"]
    assert manifest["thresholds"]["policy"]["strategy"] == "recall"
    # independent: by brute force over the validation scores, the highest one whose
    # alerts (p >= t) reach 80% recall by scikit-learn
    y, p = validation_scores(run)
    reaching = [t for t in np.unique(p) if recall_score(y, p >= t) >= 0.8]
    assert metrics["tuned_threshold"] == max(reaching)
    assert metrics["validation"]["at_tuned"]["recall"] == pytest.approx(
        recall_score(y, p >= max(reaching))
    )
    assert metrics["validation"]["at_tuned"]["recall"] >= 0.8


def test_retune_for_f1_picks_the_best_f1_threshold(trained_run, tmp_path) -> None:
    import shutil

    from fraudkeras.analysis.evaluation import retune
    from fraudkeras.metrics.thresholds import ThresholdPolicy

    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    metrics = retune(run, ThresholdPolicy("f1"))
    # independent: scikit-learn's F1 of p >= t at every distinct validation score;
    # the best one, and of equally good thresholds the lowest (the most alerts)
    y, p = validation_scores(run)
    candidates = np.unique(p)  # sorted ascending
    scores = np.array([f1_score(y, p >= t, zero_division=0.0) for t in candidates])
    best = candidates[np.flatnonzero(scores == scores.max())[0]]
    assert metrics["tuned_threshold"] == best
    assert metrics["validation"]["at_tuned"]["f1"] == pytest.approx(scores.max())
    assert json.loads((run / "metrics.json").read_text())["tuned_threshold"] == best
