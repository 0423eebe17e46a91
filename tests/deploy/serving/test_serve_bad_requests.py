"""Every kind of bad request gets a 4xx with a one-line JSON error naming the
problem, and the request after it is served: no 500, no dead worker."""

from __future__ import annotations

import httpx
import pytest

from fraudkeras.deploy.serving.payloads import MAX_BODY_BYTES, MAX_TRANSACTIONS

ROW = [0.5] * 30
V1, V2 = "/v1/models/fraud:predict", "/v2/models/fraud/infer"


def v2(shape: object, data: object, **extra: object) -> dict[str, object]:
    tensor = {"name": "transactions", "shape": shape, "datatype": "FP32", "data": data}
    return {"inputs": [{**tensor, **extra}]}


CASES = {
    "malformed JSON": (V1, b'{"instances": [[1, 2', 400, "malformed JSON"),
    "empty body": (V1, b"", 400, "empty request body"),
    "not an object": (V1, b"[1, 2]", 400, "JSON object"),
    "short row": (V1, {"instances": [ROW[:29]]}, 400, "does not fit"),
    "long row": (V1, {"instances": [[*ROW, 1.0]]}, 400, "does not fit"),
    "ragged rows": (V1, {"instances": [ROW, ROW[:5]]}, 400, "different lengths"),
    "flat row": (V1, {"instances": ROW}, 400, "does not fit"),
    "unknown feature": (V1, {"instances": [{"Tim": 1, "Amount": 2}]}, 400, "unknown feature"),
    "NaN literal": (V1, b'{"instances": [[NaN' + b", 0" * 29 + b"]]}", 400, "NaN"),
    "Infinity literal": (V1, b'{"instances": [[Infinity' + b", 0" * 29 + b"]]}", 400, "inf"),
    "float32 overflow": (V1, {"instances": [[1e39, *ROW[1:]]]}, 400, "out-of-float32-range"),
    "text for a number": (V1, {"instances": [["0.5", *ROW[1:]]]}, 400, "where a number"),
    "null for a number": (V1, {"instances": [[None, *ROW[1:]]]}, 400, "where a number"),
    "true for a number": (V1, {"instances": [[True] * 30]}, 400, "true/false"),
    "empty batch": (V1, {"instances": []}, 400, "empty batch"),
    "both forms": (V1, {"instances": [ROW], "inputs": [ROW]}, 400, "exactly one"),
    "unknown signature": (V1, {"instances": [ROW], "signature_name": "x"}, 400, "signature"),
    "too many rows": (V1, {"instances": [[0]] * (MAX_TRANSACTIONS + 1)}, 413, "at most"),
    "oversized body": (V1, b" " * (MAX_BODY_BYTES + 1), 413, "limit"),
    "unknown model": ("/v1/models/other:predict", {"instances": [ROW]}, 404, "not found"),
    "unknown version": ("/v1/models/fraud/versions/9:predict", {"instances": [ROW]}, 404, "9"),
    "v2 wrong shape": (V2, v2([1, 29], ROW[:29]), 400, "shape [n, 30]"),
    "v2 data != shape": (V2, v2([2, 30], ROW), 400, "does not fit"),
    "v2 empty batch": (V2, v2([0, 30], []), 400, "empty batch"),
    "v2 wrong datatype": (V2, v2([1, 30], ROW, datatype="INT64"), 400, "FP32"),
    "v2 wrong input": (V2, v2([1, 30], ROW, name="x"), 400, "unknown input"),
    "v2 text": (V2, v2([1, 30], ["a"] * 30), 400, "where a number"),
    "v2 no inputs": (V2, {"inputs": []}, 400, "one input"),
    "v2 bad threshold": (V2, {**v2([1, 30], ROW), "parameters": {"threshold": 2}}, 400, "[0, 1]"),
    "v2 unknown output": (V2, {**v2([1, 30], ROW), "outputs": [{"name": "y"}]}, 400, "output"),
    "unknown route": ("/v3/anything", {}, 404, "Not Found"),
    "deep JSON": (V1, b'{"instances": ' + b"[" * 1100 + b"]" * 1100 + b"}", 400, "deeper than"),
    "v2 deep JSON": (V2, b'{"inputs": ' + b"[" * 5000 + b"}", 400, "deeper than"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_is_refused_and_the_next_is_served(server, case: str) -> None:
    path, body, status, fragment = CASES[case]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        if isinstance(body, bytes):
            answer = client.post(path, content=body)
        else:
            answer = client.post(path, json=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert fragment in error and "\n" not in error
        good = client.post(V1, json={"instances": [ROW]})
        assert good.status_code == 200 and len(good.json()["predictions"]) == 1
    assert server.process.poll() is None


def test_wrong_method_is_a_json_405(server) -> None:
    answer = httpx.get(f"{server.url}{V2}")
    assert answer.status_code == 405 and "error" in answer.json()
    answer = httpx.get(f"{server.url}{V1}")
    assert answer.status_code == 405 and "POST" in answer.json()["error"]
