"""Every resource is bounded, checked on a real server with raw sockets (the slow
and malformed cases) and standard clients: header bytes (431), time to send a
request (408), open connections (503), the batching queue (503 + Retry-After),
gRPC calls at once (RESOURCE_EXHAUSTED). A client that leaves mid-request is
counted as a disconnect, never as a server error, and logs no traceback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_support import TOLERANCE, Server, launch

ROW = [0.5] * 30
V2 = "/v2/models/fraud/infer"


@pytest.fixture(scope="module")
def bounded(served_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch(
        served_run, tmp_path_factory.mktemp("log") / "serve.log",
        "--max-header-bytes", "8192", "--read-timeout", "1", "--max-connections", "8",
        "--num-batch-threads", "1", "--max-batch-size", "1", "--max-queued-requests", "1",
        "--grpc-max-concurrent-rpcs", "2",
    )  # fmt: skip
    yield server
    server.stop()


def _exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        # the server may answer and close before taking everything
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def _metrics(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics").text
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _served(server: Server) -> None:
    answer = httpx.post(f"{server.url}/v1/models/fraud:predict", json={"instances": [ROW]})
    assert answer.status_code == 200, answer.text


def test_oversized_headers_get_431(bounded: Server) -> None:
    big = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    assert _exchange(bounded.port, big).startswith(b"HTTP/1.1 431 ")
    many = b"".join(b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(200))
    answer = _exchange(
        bounded.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 ") and b"--max-header-bytes" in answer
    _served(bounded)


def test_slow_requests_are_cut_with_408(bounded: Server) -> None:
    start = time.monotonic()
    half_headers = b"POST /v2/models/fraud/infer HTTP/1.1\r\nHost: x\r\n"
    half_body = (
        b"POST /v2/models/fraud/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 5000\r\n\r\n{"inputs": '
    )
    answers = [_exchange(bounded.port, data) for data in (b"", half_headers, half_body)]
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
    assert time.monotonic() - start < 3 * 3  # three requests, each cut after ~1 s
    _served(bounded)


def test_connections_beyond_the_limit_get_503(bounded: Server) -> None:
    idle = [socket.create_connection(("127.0.0.1", bounded.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        answer = httpx.get(f"{bounded.url}/v2/health/live")
        assert answer.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    _served(bounded)


def test_full_batching_queue_gets_503_and_the_rest_are_answered(bounded: Server, batch) -> None:
    x, reference, _ = batch
    rows = np.resize(x, (10_000, 30))  # the test rows over and over
    header = (
        b'{"inputs": [{"name": "transactions", "shape": [10000, 30], "datatype": "FP32", '
        b'"parameters": {"binary_data_size": 1200000}}], "outputs": [{"name": '
        b'"fraud_probability", "parameters": {"binary_data": true}}]}'
    )
    body = header + rows.astype("<f4").tobytes()
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(4):
                answers.append(client.post(
                    f"{bounded.url}{V2}", content=body,
                    headers={"Inference-Header-Content-Length": str(len(header))},
                ))  # fmt: skip

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses, statuses
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] and "overloaded" in refused.json()["error"]
    for answer in (a for a in answers if a.status_code == 200):
        length = int(answer.headers["inference-header-content-length"])
        got = np.frombuffer(answer.content[length:], dtype="<f4")
        expected = np.resize(reference, 10_000)
        assert np.max(np.abs(got - expected)) <= TOLERANCE


def test_client_disconnects_are_counted_not_errors(bounded: Server) -> None:
    before = _metrics(bounded)
    key = "fraudkeras_client_disconnects_total[('protocol', 'rest')]"
    partial = (
        b"POST /v1/models/fraud:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n"
        b'{"instances": [[0.5, 0.5'
    )
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", bounded.port)) as sock:
            sock.sendall(partial)
            time.sleep(0.01)
    time.sleep(0.5)
    after = _metrics(bounded)
    assert after[key] - before.get(key, 0.0) == 20
    assert not any("'500'" in name for name in after), [n for n in after if "500" in n]
    assert "Traceback" not in bounded.output() and "ClientDisconnect" not in bounded.output()


def test_grpc_calls_beyond_the_limit_are_resource_exhausted(bounded: Server, batch) -> None:
    import tritonclient.grpc as triton

    x, reference, _ = batch
    rows = np.resize(x, (10_000, 30))
    codes: list[str] = []

    def call() -> None:
        client = triton.InferenceServerClient(f"127.0.0.1:{bounded.grpc_port}")
        given = triton.InferInput("transactions", [10_000, 30], "FP32")
        given.set_data_from_numpy(rows)
        for _ in range(3):
            try:
                result = client.infer("fraud", [given])
            except triton.InferenceServerException as error:
                codes.append(str(error.status()))
            else:
                got = result.as_numpy("fraud_probability")
                assert np.max(np.abs(got - np.resize(reference, 10_000))) <= TOLERANCE
                codes.append("OK")
        client.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(codes) == 24 and "OK" in codes, codes
    assert "StatusCode.RESOURCE_EXHAUSTED" in codes, codes
    # beyond RESOURCE_EXHAUSTED only the full batching queue's UNAVAILABLE may appear
    assert set(codes) <= {"OK", "StatusCode.RESOURCE_EXHAUSTED", "StatusCode.UNAVAILABLE"}, codes
