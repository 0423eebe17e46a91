"""The V2 binary tensor data extension: tritonclient's HTTP client as shipped, with
its defaults (raw bytes both ways), against the real server; and the extension's
malformed bodies, each refused with a 400 naming the problem."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from serving_support import TOLERANCE, check_flags

httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")

ROW = np.full(30, 0.5, dtype="<f4")
INFER = "/v2/models/fraud/infer"


def test_tritonclient_http_defaults_agree_with_keras(server, batch) -> None:
    x, reference, threshold = batch
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("fraud")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    given = httpclient.InferInput("transactions", list(x.shape), "FP32")
    given.set_data_from_numpy(x)  # binary_data=True: the default
    result = client.infer("fraud", [given], request_id="h1")
    probabilities = result.as_numpy("fraud_probability")
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(x),)
    assert np.max(np.abs(probabilities - reference)) <= TOLERANCE
    check_flags(result.as_numpy("is_fraud").tolist(), reference, threshold)
    assert result.get_response()["id"] == "h1"

    # JSON output asked for by name, binary input; and a per-request threshold
    wanted = [httpclient.InferRequestedOutput("is_fraud", binary_data=False)]
    flagged = client.infer("fraud", [given], outputs=wanted, parameters={"threshold": 0.0})
    assert flagged.get_response()["outputs"][0]["data"] == [True] * len(x)
    assert flagged.as_numpy("fraud_probability") is None

    # JSON input, binary output (the client's default when no outputs are named)
    as_json = httpclient.InferInput("transactions", [3, 30], "FP32")
    as_json.set_data_from_numpy(x[:3], binary_data=False)
    small = client.infer("fraud", [as_json])
    assert np.array_equal(small.as_numpy("fraud_probability"), probabilities[:3])

    with pytest.raises(httpclient.InferenceServerException, match=r"shape \[n, 30\]"):
        wrong = httpclient.InferInput("transactions", [2, 29], "FP32")
        wrong.set_data_from_numpy(x[:2, :29].copy())
        client.infer("fraud", [wrong])
    again = client.infer("fraud", [given])  # still serving after a refusal
    assert np.array_equal(again.as_numpy("fraud_probability"), probabilities)
    client.close()


def test_the_documented_client_example_scores_as_keras(server, batch) -> None:
    """``examples/triton_client.py``, embedded in the serving guide."""
    import runpy
    from pathlib import Path

    x, reference, _ = batch
    example = Path(__file__).parents[3] / "examples" / "triton_client.py"
    outputs = runpy.run_path(str(example))["score"](f"127.0.0.1:{server.port}", x)
    assert np.max(np.abs(outputs["fraud_probability"] - reference)) <= TOLERANCE
    assert outputs["is_fraud"].shape == outputs["expected_loss"].shape == (len(x),)


def _header(rows: int, size: int | None) -> dict[str, object]:
    tensor: dict[str, object] = {"name": "transactions", "shape": [rows, 30], "datatype": "FP32"}
    if size is not None:
        tensor["parameters"] = {"binary_data_size": size}
    return {"inputs": [tensor]}


NAN_ROW = ROW.copy()
NAN_ROW[3] = np.nan
CASES = {
    "header longer than body": (_header(1, 120), ROW.tobytes(), "99999", "exceeds"),
    "header length not a number": (_header(1, 120), ROW.tobytes(), "abc", "byte count"),
    "size does not fit shape": (_header(2, 120), ROW.tobytes(), None, "is 240 bytes"),
    "fewer bytes than declared": (_header(1, 120), ROW.tobytes()[:100], None, "100 bytes"),
    "bytes no input claims": (_header(1, None), ROW.tobytes(), None, "no input claims"),
    "size not a count": (_header(1, -4), ROW.tobytes(), None, "byte count"),
    "NaN in raw data": (_header(1, 120), NAN_ROW.tobytes(), None, "NaN"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_binary_request_is_a_400(server, case: str) -> None:
    header, raw, length, fragment = CASES[case]
    text = json.dumps(header).encode()
    answer = httpx.post(
        f"{server.url}{INFER}", content=text + raw,
        headers={"Inference-Header-Content-Length": length or str(len(text))},
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["error"]


def test_binary_request_without_the_client_library(server, batch) -> None:
    """The wire format written by hand (as the protocol describes it), read back by hand."""
    x, reference, _ = batch
    header = _header(4, 4 * 30 * 4)
    header["outputs"] = [{"name": "fraud_probability", "parameters": {"binary_data": True}}]
    text = json.dumps(header).encode()
    answer = httpx.post(
        f"{server.url}{INFER}", content=text + x[:4].astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(text))},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    length = int(answer.headers["Inference-Header-Content-Length"])
    meta = json.loads(answer.content[:length])
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": 16}
    values = np.frombuffer(answer.content[length:], dtype="<f4")
    assert np.max(np.abs(values - reference[:4])) <= TOLERANCE
