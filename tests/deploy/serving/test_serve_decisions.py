"""A run that decides by expected cost, served for real: every protocol's answer
carries ``expected_loss`` = p x Amount and flags by the rule, computed here from
the Keras model's own probabilities and the request's amounts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_support import Server, launch

from fraudkeras.modeling.model import fraud_probabilities

TOLERANCE = 1e-5
REVIEW_COST = 5.0


@pytest.fixture(scope="module")
def expected_cost_server(
    served_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    from fraudkeras.analysis.evaluation import retune
    from fraudkeras.metrics.thresholds import ThresholdPolicy

    run = tmp_path_factory.mktemp("decide") / "run"
    shutil.copytree(served_run, run)
    retune(run, ThresholdPolicy("expected-cost", review_cost=REVIEW_COST))
    running = launch(run, tmp_path_factory.mktemp("log") / "serve.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def rows(trained_run) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Test rows, their Keras probabilities, the expected losses and the rule's flags."""
    x = trained_run.split.test.x[:64].astype(np.float32)
    p = fraud_probabilities(trained_run.model, x)
    loss = p * x[:, -1].astype(np.float64)  # Amount is the last feature
    return x, p, loss, loss > (1 - p) * REVIEW_COST


def check(losses, flags, rows) -> None:
    _, p, expected, rule = rows
    assert np.allclose(np.asarray(losses, dtype=np.float64), expected, rtol=1e-4, atol=TOLERANCE)
    clear = np.abs(expected - (1 - p) * REVIEW_COST) > 1e-3  # rows far enough from the line
    assert np.array_equal(np.asarray(flags, bool)[clear], rule[clear])


def test_v1_and_v2_answers_carry_expected_loss_and_the_rule(expected_cost_server, rows) -> None:
    x = rows[0]
    url = expected_cost_server.url
    v1 = httpx.post(f"{url}/v1/models/fraud:predict", json={"instances": x.tolist()}).json()
    predictions = v1["predictions"]
    check([r["expected_loss"] for r in predictions], [r["is_fraud"] for r in predictions], rows)
    request = {"inputs": [{"name": "transactions", "shape": list(x.shape), "datatype": "FP32",
                           "data": x.ravel().tolist()}]}  # fmt: skip
    v2 = httpx.post(f"{url}/v2/models/fraud/infer", json=request).json()
    outputs = {o["name"]: o["data"] for o in v2["outputs"]}
    check(outputs["expected_loss"], outputs["is_fraud"], rows)


def test_grpc_answer_carries_expected_loss(expected_cost_server, rows) -> None:
    import tritonclient.grpc as triton

    x = rows[0]
    client = triton.InferenceServerClient(f"127.0.0.1:{expected_cost_server.grpc_port}")
    given = triton.InferInput("transactions", list(x.shape), "FP32")
    given.set_data_from_numpy(x)
    result = client.infer("fraud", [given])
    check(result.as_numpy("expected_loss"), result.as_numpy("is_fraud"), rows)


def test_v1_columnar_answer_carries_expected_loss(expected_cost_server, rows) -> None:
    x = rows[0]
    url = f"{expected_cost_server.url}/v1/models/fraud:predict"
    outputs = httpx.post(url, json={"inputs": {"transactions": x.tolist()}}).json()["outputs"]
    check(outputs["expected_loss"], outputs["is_fraud"], rows)


def test_v2_binary_tensors_carry_expected_loss(expected_cost_server, rows) -> None:
    httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")
    x, p = rows[0], rows[1]
    client = httpclient.InferenceServerClient(f"127.0.0.1:{expected_cost_server.port}")
    outputs = [o["name"] for o in client.get_model_metadata("fraud")["outputs"]]
    assert outputs == ["fraud_probability", "is_fraud", "expected_loss"]
    given = httpclient.InferInput("transactions", list(x.shape), "FP32")
    given.set_data_from_numpy(x)  # binary both ways: the client's default
    result = client.infer("fraud", [given])
    losses = result.as_numpy("expected_loss")
    assert losses.dtype == np.float32 and losses.shape == (len(x),)
    check(losses, result.as_numpy("is_fraud"), rows)
    # a request's threshold replaces the rule; the expected loss stays the model's
    given_threshold = float(np.median(p))
    override = client.infer("fraud", [given], parameters={"threshold": given_threshold})
    flagged = override.as_numpy("is_fraud")
    clear = np.abs(p - given_threshold) > 1e-5
    assert np.array_equal(flagged[clear], (p >= given_threshold)[clear])
    kept = override.as_numpy("expected_loss").astype(np.float64)
    assert np.allclose(kept, rows[2], rtol=1e-4, atol=TOLERANCE)


def test_grpc_metadata_lists_expected_loss(expected_cost_server) -> None:
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{expected_cost_server.grpc_port}")
    metadata = client.get_model_metadata("fraud", as_json=True)
    assert metadata["outputs"][2] == {"name": "expected_loss", "datatype": "FP32", "shape": ["-1"]}
