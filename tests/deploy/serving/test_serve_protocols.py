"""The real server, over loopback: TF Serving REST, V2 REST and V2 gRPC answers
agree with the Keras model's own probabilities (computed here, not by the server's
code path); health, metadata and ``/metrics``."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_support import TOLERANCE, check_flags

from fraudkeras.data.schema import FEATURES


def test_v1_rows_agree_with_keras(server, batch) -> None:
    x, reference, threshold = batch
    answer = httpx.post(f"{server.url}/v1/models/fraud:predict", json={"instances": x.tolist()})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    probabilities = np.array([p["fraud_probability"] for p in predictions])
    assert np.max(np.abs(probabilities - reference)) <= TOLERANCE
    check_flags([p["is_fraud"] for p in predictions], reference, threshold)


@pytest.mark.parametrize("form", ["keyed rows", "named rows", "columns", "named", "per feature"])
def test_v1_every_input_form(server, batch, form: str) -> None:
    x, reference, _ = batch
    rows = x[:3].tolist()
    body = {
        "keyed rows": {"instances": [dict(zip(FEATURES, row, strict=True)) for row in rows]},
        "named rows": {"instances": [{"transactions": row} for row in rows]},
        "columns": {"inputs": rows, "signature_name": "serving_default"},
        "named": {"inputs": {"transactions": rows}},
        "per feature": {"inputs": {f: x[:3, i].tolist() for i, f in enumerate(FEATURES)}},
    }[form]
    answer = httpx.post(f"{server.url}/v1/models/fraud/versions/1:predict", json=body)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    if "predictions" in payload:
        got = [p["fraud_probability"] for p in payload["predictions"]]
    else:
        got = payload["outputs"]["fraud_probability"]
    assert np.max(np.abs(np.array(got) - reference[:3])) <= TOLERANCE


def test_v1_status_and_metadata(server) -> None:
    status = httpx.get(f"{server.url}/v1/models/fraud").json()
    assert status["model_version_status"][0] == {
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""},
    }  # fmt: skip
    metadata = httpx.get(f"{server.url}/v1/models/fraud/metadata").json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["inputs"]) == ["transactions"]
    assert set(signature["outputs"]) == {"fraud_probability", "is_fraud", "expected_loss"}
    assert httpx.get(f"{server.url}/v1/models/fraud/versions/7").status_code == 404


@pytest.mark.parametrize("nested", [False, True])
def test_v2_rest_agrees_with_keras(server, batch, nested: bool) -> None:
    x, reference, threshold = batch
    data = x.tolist() if nested else x.ravel().tolist()
    request = {"id": "r1", "inputs": [{"name": "transactions", "shape": list(x.shape),
                                       "datatype": "FP32", "data": data}]}  # fmt: skip
    answer = httpx.post(f"{server.url}/v2/models/fraud/infer", json=request)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert payload["id"] == "r1" and payload["model_version"] == "1"
    outputs = {o["name"]: o for o in payload["outputs"]}
    assert outputs["fraud_probability"]["shape"] == [len(x)]
    assert np.max(np.abs(np.array(outputs["fraud_probability"]["data"]) - reference)) <= TOLERANCE
    check_flags(outputs["is_fraud"]["data"], reference, threshold)
    assert payload["parameters"]["threshold"] == pytest.approx(threshold)


def test_v2_threshold_per_request(server, batch) -> None:
    x, reference, _ = batch
    for threshold in (0.0, 0.3, 1.0):
        request = {
            "parameters": {"threshold": threshold},
            "inputs": [{"name": "transactions", "shape": [8, 30], "datatype": "FP32",
                        "data": x[:8].tolist()}],
            "outputs": [{"name": "is_fraud"}],
        }  # fmt: skip
        payload = httpx.post(f"{server.url}/v2/models/fraud/infer", json=request).json()
        assert [o["name"] for o in payload["outputs"]] == ["is_fraud"]
        check_flags(payload["outputs"][0]["data"], reference[:8], threshold)


def test_v2_grpc_agrees_with_keras(server, batch) -> None:
    import tritonclient.grpc as triton

    x, reference, threshold = batch
    client = triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("fraud")
    metadata = client.get_model_metadata("fraud", as_json=True)
    assert metadata["inputs"][0] == {"name": "transactions", "datatype": "FP32",
                                     "shape": ["-1", "30"]}  # fmt: skip
    given = triton.InferInput("transactions", list(x.shape), "FP32")
    given.set_data_from_numpy(x)
    result = client.infer("fraud", [given], request_id="g1")
    assert np.max(np.abs(result.as_numpy("fraud_probability") - reference)) <= TOLERANCE
    check_flags(result.as_numpy("is_fraud").tolist(), reference, threshold)
    everything = client.infer("fraud", [given], parameters={"threshold": 0.0})
    assert everything.as_numpy("is_fraud").all()
    with pytest.raises(triton.InferenceServerException, match="shape"):
        wrong = triton.InferInput("transactions", [2, 29], "FP32")
        wrong.set_data_from_numpy(x[:2, :29].copy())
        client.infer("fraud", [wrong])
    with pytest.raises(triton.InferenceServerException, match="not found"):
        client.infer("other", [given])
    again = client.infer("fraud", [given])  # still serving after refusals
    assert np.array_equal(again.as_numpy("fraud_probability"), result.as_numpy("fraud_probability"))
    client.close()


def test_health_readiness_and_metadata(server) -> None:
    assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/fraud/ready").json()["ready"] is True
    meta = httpx.get(f"{server.url}/v2/models/fraud").json()
    assert meta["inputs"] == [{"name": "transactions", "datatype": "FP32", "shape": [-1, 30]}]
    assert httpx.get(f"{server.url}/v2").json()["name"] == "fraudkeras"
    missing = httpx.get(f"{server.url}/v2/models/other")
    assert missing.status_code == 404 and "other" in missing.json()["error"]


def test_metrics_parse_as_prometheus_text(server, batch) -> None:
    x, _, _ = batch
    httpx.post(f"{server.url}/v1/models/fraud:predict", json={"instances": x[:5].tolist()})
    httpx.post(f"{server.url}/v1/models/fraud:predict", content=b"{")
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["fraudkeras_requests"].samples
        if s.name.endswith("_total")
    }
    assert counts[("v1_predict", "200")] >= 1 and counts[("v1_predict", "400")] >= 1
    (version,) = families["fraudkeras_model_version"].samples
    assert version.value == 1 and version.labels == {"model": "fraud"}
    buckets = families["fraudkeras_batch_transactions"].samples
    batches = {s.labels.get("le"): s.value for s in buckets if s.name.endswith("_bucket")}
    assert batches["5.0"] >= 1
    assert "fraudkeras_request_duration_seconds" in families
    assert "process_resident_memory_bytes" in {s.name for f in families.values() for s in f.samples}


def _v2_infer_counts(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["fraudkeras_requests"]
    return {
        s.labels["status"]: s.value
        for s in requests.samples
        if s.name.endswith("_total") and s.labels["route"] == "v2_infer"
    }


def test_v2_infer_counted_by_status(server, batch) -> None:
    """Each V2 infer answer is counted under its route and status; a method the
    route does not take gets the JSON 405."""
    x, _, _ = batch
    tensor = {"name": "transactions", "datatype": "FP32", "shape": [2, 30],
              "data": x[:2].ravel().tolist()}  # fmt: skip
    before = _v2_infer_counts(server.url)
    answers = (
        httpx.post(f"{server.url}/v2/models/fraud/infer", json={"inputs": [tensor]}),
        httpx.post(f"{server.url}/v2/models/fraud/versions/1/infer", content=b"{"),
        httpx.post(f"{server.url}/v2/models/other/infer", json={"inputs": [tensor]}),
    )
    assert [a.status_code for a in answers] == [200, 400, 404]
    after = _v2_infer_counts(server.url)
    grown = {s: n - before.get(s, 0) for s, n in after.items() if n != before.get(s, 0)}
    assert grown == {"200": 1, "400": 1, "404": 1}
    wrong = httpx.get(f"{server.url}/v2/models/fraud/infer")
    assert wrong.status_code == 405 and "GET /v2/models/fraud/infer" in wrong.json()["error"]
