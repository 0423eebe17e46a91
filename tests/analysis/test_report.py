"""RUN_DIR/report/: the analysis numbers, the pictures and the two documents."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraudkeras._core.errors import OutputError
from fraudkeras.analysis.report import PLOTS, write_report
from fraudkeras.metrics.tables import METRIC_ROWS
from fraudkeras.modeling.model import fraud_probabilities, load_model
from helpers import assert_real_png


@pytest.fixture(scope="module")
def reported(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(trained_run.run_dir, run)
    write_report(run, repeats=2)
    return run


def test_every_picture_is_written(reported: Path) -> None:
    for name in PLOTS.values():
        assert_real_png(reported / "report" / name)


def test_analysis_numbers_match_independent_computations(reported: Path, trained_run) -> None:
    analysis = json.loads((reported / "report" / "analysis.json").read_text())
    metrics = json.loads((reported / "metrics.json").read_text())
    model = load_model(reported / "model.keras")
    validation, test = trained_run.split.validation, trained_run.split.test
    expected = average_precision_score(validation.y, fraud_probabilities(model, validation.x))
    assert analysis["importance"]["baseline_pr_auc"] == pytest.approx(expected, abs=1e-9)
    assert len(analysis["importance"]["features"]) == 30
    threshold = metrics["tuned_threshold"]
    assert analysis["threshold"] == threshold
    p = fraud_probabilities(model, test.x)
    missed = (test.y == 1) & (p < threshold)
    assert len(analysis["errors"]["false_negatives"]) == min(10, int(missed.sum()))
    for item in analysis["errors"]["false_negatives"]:
        (i,) = np.flatnonzero(test.rows == item["row"])
        assert test.y[i] == 1 and item["probability"] == pytest.approx(p[i])
        assert all(reason["logit"] < 0 for reason in item["pushed_by"])
    caught = sum(band["caught"] for band in analysis["recall_by_amount"])
    assert caught == metrics["test"]["at_tuned"]["tp"]


def test_report_mentions_every_metric(reported: Path) -> None:
    text = (reported / "report" / "report.md").read_text()
    metrics = json.loads((reported / "metrics.json").read_text())
    test = metrics["test"]
    assert f"PR-AUC (average precision) {test['pr_auc']:.4f}" in text
    assert f"ROC-AUC {test['roc_auc']:.4f}" in text
    for label, key, fmt in METRIC_ROWS:
        row = (
            f"| {label} | {fmt.format(test['at_0.5'][key])} | {fmt.format(test['at_tuned'][key])} |"
        )
        assert row in text
    headings = ("Decision threshold", "Feature importance", "Error analysis",
                "Recall by amount band", "Precision@100 per day", "Training history")  # fmt: skip
    for heading in headings:
        assert heading in text
    for name in PLOTS.values():
        assert f"]({name})" in text


def test_html_is_self_contained(reported: Path) -> None:
    page = (reported / "report" / "report.html").read_text()
    images = re.findall(r'<img alt="[^"]*" src="([^"]+)"', page)
    assert len(images) == len(PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    markdown = (reported / "report" / "report.md").read_text().splitlines()
    assert page.count("<table>") == sum(line.startswith("|---") for line in markdown)


def test_no_plots_means_tables_only(trained_run, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    write_report(run, plots=False, repeats=1)
    assert sorted(p.name for p in (run / "report").iterdir()) == [
        "analysis.json", "report.html", "report.md",
    ]  # fmt: skip
    assert "<img" not in (run / "report" / "report.html").read_text()


def test_existing_report_needs_force_and_a_failure_leaves_the_old_one(reported: Path, monkeypatch):
    with pytest.raises(OutputError, match="exists already"):
        write_report(reported)
    before = (reported / "report" / "report.md").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("fraudkeras.analysis.plots.importance", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(reported, force=True, repeats=1)
    assert (reported / "report" / "report.md").read_text() == before
    assert [p.name for p in reported.iterdir() if p.name.startswith(".")] == []
