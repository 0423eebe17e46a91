from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from fraudkeras._core.errors import OutputError, ParameterError, TrainingError
from fraudkeras.modeling.model import FraudMLP, fraud_probabilities, load_model
from fraudkeras.runs.config import TrainConfig
from fraudkeras.runs.layout import check_run_dir
from fraudkeras.training.train import train
from helpers import BACKEND, MEASUREMENTS


def test_run_folder_holds_every_record(trained_run) -> None:
    folder = trained_run.run_dir
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "model.keras",
            "checksums.json",
            "config.json",
            "metrics.json",
            "history.json",
            "data.json",
            "environment.json",
            "drift_reference.json",
        ]
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["backend"] == BACKEND and metrics["split"] == "stratified"
    assert metrics["class_weight"] == {"strategy": "none", "normal": 1.0, "fraud": 1.0}
    assert metrics["train_seconds"] > 0 and metrics["epochs_run"] == 2
    assert 50 < metrics["peak_rss_mb"] < 20_000  # a real reading in MiB, not bytes or KiB
    for at in ("at_0.5", "at_tuned"):
        assert set(metrics["test"][at]) == {
            "threshold",
            "precision",
            "recall",
            "f1",
            "tn",
            "fp",
            "fn",
            "tp",
            "missed_fraud_amount",
            "false_alarm_cost",
            "cost",
            "savings",
            "flagged",
        }
    assert metrics["threshold_policy"] == {"strategy": "f1", "target_recall": 0.9,
                                           "review_cost": 5.0, "chargeback_fee": 0.0}  # fmt: skip
    test_amounts = trained_run.split.test.amounts
    assert metrics["test"]["baseline_costs"] == pytest.approx({
        "flag_nothing": test_amounts[trained_run.split.test.y == 1].sum(),
        "flag_everything": 5.0 * int((trained_run.split.test.y == 0).sum()),
    })  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    assert config["data"] == trained_run.data["source"] and config["seed"] == 7
    data = json.loads((folder / "data.json").read_text())
    assert data["fingerprint"]["rows"] == 3000 and data["split"]["test"]["rows"] == 450
    history = json.loads((folder / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_pr_auc" in history
    assert len(history["epoch_seconds"]) == 2
    expected_median = round(statistics.median(history["epoch_seconds"]), 4)
    assert metrics["median_epoch_seconds"] == pytest.approx(expected_median, abs=1e-4)
    assert json.loads((folder / "environment.json").read_text())["keras"].startswith("3.")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no scratch left


def test_metrics_match_sklearn_on_the_saved_model(trained_run) -> None:
    model = load_model(trained_run.run_dir / "model.keras")
    test, validation = trained_run.split.test, trained_run.split.validation
    p_test, p_val = fraud_probabilities(model, test.x), fraud_probabilities(model, validation.x)
    metrics = trained_run.metrics
    assert metrics["test"]["pr_auc"] == pytest.approx(
        average_precision_score(test.y, p_test), abs=1e-6
    )
    assert metrics["test"]["roc_auc"] == pytest.approx(roc_auc_score(test.y, p_test), abs=1e-6)
    best_f1 = max(f1_score(validation.y, p_val >= t) for t in np.unique(p_val))
    tuned = metrics["test"]["at_tuned"]["threshold"]
    assert f1_score(validation.y, p_val >= tuned) == pytest.approx(best_f1, abs=1e-9)
    flagged = p_test >= tuned
    assert metrics["test"]["at_tuned"]["tp"] == int((flagged & (test.y == 1)).sum())
    assert metrics["test"]["at_0.5"]["fp"] == int(((p_test >= 0.5) & (test.y == 0)).sum())


def test_same_seed_same_backend_same_metrics(small, trained_run) -> None:
    again = train(small, epochs=2, batch_size=128, seed=7)
    first = {k: v for k, v in trained_run.metrics.items() if k not in MEASUREMENTS}
    second = {k: v for k, v in again.metrics.items() if k not in MEASUREMENTS}
    assert first == second
    assert set(trained_run.metrics) - set(first) == set(MEASUREMENTS)


def test_class_weight_reaches_the_model(small) -> None:
    run = train(small, epochs=1, batch_size=512, class_weight="balanced")
    assert isinstance(run.model, FraudMLP)
    assert run.model.class_weight == (run.class_weights.normal, run.class_weights.fraud)
    n, n_fraud = len(run.split.train.y), int(run.split.train.y.sum())
    assert run.model.class_weight[1] == pytest.approx(n / (2 * n_fraud))


def test_existing_output_is_refused_before_training(trained_run) -> None:
    with pytest.raises(OutputError, match="exists already"):
        train("does-not-matter.csv", out=trained_run.run_dir, epochs=1)


def test_divergence_is_a_training_error(small) -> None:
    with pytest.raises(TrainingError, match="NaN/inf"):
        train(small, epochs=3, learning_rate=1e30, class_weight="0:1e30,1:1e30")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, inf\]"),
        ({"learning_rate": float("nan")}, "learning_rate must be finite"),
        ({"split": "random"}, "split must be one of"),
        ({"class_weight": "heavy"}, "class_weight must be one of"),
        ({"hidden_units": ()}, "at least one layer"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"epoch": 3}, "unexpected keyword argument 'epoch'"),
    ],
)
def test_bad_options_are_parameter_errors(options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        TrainConfig(**options) if "epoch" not in options else train("sample", **options)


def test_batch_larger_than_training_set_is_refused(small) -> None:
    with pytest.raises(ParameterError, match="batch_size 5000 exceeds the 2100 training rows"):
        train(small, batch_size=5000)


def test_interrupted_save_leaves_no_folder(
    small, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FraudMLP, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(small, out=tmp_path / "run", epochs=1, batch_size=512)
    # only the checkpoint that `resume` continues from: no run folder, no scratch
    assert [p.name for p in tmp_path.iterdir()] == ["run.partial"]
    with pytest.raises(Exception, match="no such run folder"):
        check_run_dir(tmp_path / "run")


def test_python_train_writes_the_report_like_the_cli(small, tmp_path: Path) -> None:
    run = train(small, out=tmp_path / "run", epochs=1, batch_size=512, plots=False)
    assert run.report_dir == tmp_path / "run" / "report"
    text = (run.report_dir / "report.md").read_text()
    assert f"{run.metrics['test']['pr_auc']:.4f}" in text  # the run's own numbers, not a stub
