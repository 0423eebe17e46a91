"""``explain``: one transaction, from the run's data or from JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fraudkeras._core.errors import DataError, ParameterError
from fraudkeras.analysis.explain import explain_run, format_explanation, parse_transaction
from fraudkeras.data.schema import FEATURES
from fraudkeras.modeling.model import fraud_probabilities, load_model


def test_a_row_of_the_runs_data(trained_run, small) -> None:
    row = int(np.flatnonzero(small.labels() == 1)[0])
    explained = explain_run(trained_run.run_dir, row=row)
    model = load_model(trained_run.run_dir / "model.keras")
    expected = fraud_probabilities(model, small.features()[row : row + 1])[0]
    assert explained["probability"] == pytest.approx(expected, rel=1e-5)
    assert explained["label"] == 1
    assert explained["flagged"] == (expected >= trained_run.metrics["tuned_threshold"])
    assert list(explained["contributions"]) == list(FEATURES)
    text = format_explanation(explained, top=3)
    assert f"fraud probability {explained['probability']:.4f}" in text
    assert "(labelled fraud)" in text and "pushing towards fraud" in text


def test_json_and_row_give_the_same_answer(trained_run, small, tmp_path) -> None:
    values = dict(zip(FEATURES, small.features()[5].tolist(), strict=True))
    from_json = explain_run(trained_run.run_dir, transaction_json=json.dumps(values))
    file = tmp_path / "t.json"
    file.write_text(json.dumps(values))
    from_file = explain_run(trained_run.run_dir, transaction_json=f"@{file}")
    from_row = explain_run(trained_run.run_dir, row=5)
    assert from_json["probability"] == from_file["probability"] == from_row["probability"]
    assert from_json["label"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "transaction_json: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"Time": 1}', "missing column(s) V1, V2"),
        ("@/nonexistent/t.json", "/nonexistent/t.json: cannot read"),
    ],
)
def test_bad_transactions_are_refused(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_transaction(text)


def test_bad_values_are_refused() -> None:
    record = dict.fromkeys(FEATURES, 1.0)
    with pytest.raises(DataError, match="NaN"):
        parse_transaction(json.dumps({**record, "V3": float("nan")}))
    with pytest.raises(DataError):
        parse_transaction(json.dumps({**record, "V3": "high"}))
    # other keys are not the model's; features are found by name in any order
    shuffled = dict(reversed(list({**record, "Merchant": "shop 1"}.items())))
    assert parse_transaction(json.dumps(shuffled)) == [1.0] * len(FEATURES)


def test_row_out_of_range(trained_run) -> None:
    with pytest.raises(ParameterError, match=r"row 3000: .* has 3,000 rows \(0 to 2999\)"):
        explain_run(trained_run.run_dir, row=3000)
    with pytest.raises(ParameterError, match="exactly one of"):
        explain_run(trained_run.run_dir)
