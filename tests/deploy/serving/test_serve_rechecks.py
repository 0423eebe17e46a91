"""The served model is re-checked every ``--poll-seconds``: when its file on disk
no longer matches the sha256 verified at load (overwritten by another model's
file), readiness turns false over REST and gRPC while predictions are still
answered by the verified model in memory; putting the file back makes the server
ready again."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from serving_support import TOLERANCE, Server, launch

WAIT_SECONDS = 20.0


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _ready_everywhere(server: Server, expected: bool) -> None:
    """REST health and model readiness (200/503) and gRPC ServerReady/ModelReady agree."""
    import tritonclient.grpc as triton

    status = 200 if expected else 503
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == status
    assert httpx.get(f"{server.url}/v2/models/fraud/ready").status_code == status
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    client = triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        assert client.is_server_ready() is expected and client.is_model_ready("fraud") is expected
        assert client.is_server_live()
    finally:
        client.close()


def _probabilities(server: Server, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What TF Serving REST and V2 gRPC answer for ``x``."""
    import tritonclient.grpc as triton

    answer = httpx.post(f"{server.url}/v1/models/fraud:predict", json={"instances": x.tolist()})
    assert answer.status_code == 200, answer.text
    rest = np.array([row["fraud_probability"] for row in answer.json()["predictions"]])
    client = triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        given = triton.InferInput("transactions", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        grpc = client.infer("fraud", [given]).as_numpy("fraud_probability")
    finally:
        client.close()
    return rest, grpc


def test_a_changed_model_file_makes_the_server_unready_until_put_back(
    served_run: Path, batch, tmp_path: Path
) -> None:
    x, reference, _ = batch
    export = tmp_path / "export"
    shutil.copytree(served_run / "export", export)
    served = export / "model_float32.tflite"
    original = served.read_bytes()
    server = launch(export, tmp_path / "serve.log", "--poll-seconds", "0.1")
    try:
        _ready_everywhere(server, True)
        with served.open("r+b") as file:  # one flipped byte: the sha256 no longer matches
            file.seek(len(original) // 2)
            file.write(bytes([original[len(original) // 2] ^ 0xFF]))
        unready = _until(lambda: httpx.get(f"{server.url}/v2/health/ready").status_code == 503)
        assert unready, server.output()
        _ready_everywhere(server, False)
        for answered in _probabilities(server, x):  # the verified copy in memory answers
            assert np.max(np.abs(answered - reference)) <= TOLERANCE
        log = server.output()
        assert "fails its check" in log and "changed on disk" in log and "not ready" in log

        served.write_bytes(original)  # put back: ready again
        assert _until(lambda: httpx.get(f"{server.url}/v2/health/ready").status_code == 200)
        _ready_everywhere(server, True)
        assert "passes its check again: ready" in server.output()

        served.unlink()  # removed: unready, still answering
        assert _until(lambda: httpx.get(f"{server.url}/v2/health/ready").status_code == 503)
        rest, _ = _probabilities(server, x)
        assert np.max(np.abs(rest - reference)) <= TOLERANCE
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert "Traceback" not in server.output()
