"""Start-up failures with the CLI's exit codes, a version hot swap under steady
requests that loses none, a broken new version that changes nothing, and SIGTERM."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from serving_support import free_port, launch

from helpers import run_cli

ROW = [0.5] * 30
REQUEST = {"inputs": [{"name": "transactions", "shape": [1, 30], "datatype": "FP32", "data": ROW}]}


def test_bad_models_fail_at_start_with_exit_codes(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer at all")
    port = str(free_port())
    for model, code, fragment in [
        (broken, 5, "not a valid LiteRT model"),
        (tmp_path / "missing", 5, "no such model"),
        (tmp_path / "model.txt", 5, "no such model"),
    ]:
        result = run_cli("serve", str(model), "--port", port, "--grpc-port", "0")
        assert result.returncode == code, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and fragment in errors[0] and "Traceback" not in result.stderr


def test_port_in_use_fails_at_start(served_run: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli("serve", str(served_run), "--port", port, "--grpc-port", "0")
    assert result.returncode == 9, result.stderr
    assert "cannot listen" in result.stderr


def _version(export: Path, repository: Path, number: int) -> None:
    """Copy a version in under a hidden name, then rename: it appears whole."""
    scratch = repository / f".incoming-{number}"
    shutil.copytree(export, scratch)
    scratch.rename(repository / str(number))


def test_hot_swap_under_steady_requests_loses_none(served_run: Path, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    repository.mkdir()
    _version(served_run / "export", repository, 1)
    server = launch(repository, tmp_path / "serve.log", "--poll-seconds", "0.2")
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def steady() -> None:  # bounded: 30 s or 5,000 requests, whichever first
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set() and time.monotonic() < deadline and len(seen) < 5000:
                answer = client.post("/v2/models/fraud/infer", json=REQUEST)
                version = answer.json().get("model_version", "") if answer.is_success else ""
                seen.append((answer.status_code, version))
                time.sleep(0.002)

    sender = threading.Thread(target=steady)
    sender.start()
    try:
        time.sleep(0.5)
        _version(served_run / "export", repository, 2)
        _wait_for(lambda: any(v == "2" for _, v in seen), "version 2 to serve")
        broken = repository / "3"
        broken.mkdir()
        (broken / "model.tflite").write_bytes(b"garbage")
        _wait_for(lambda: "version 3 not loaded" in server.output(), "the broken version's log")
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(40)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert server.stop() == 0, server.output()
    assert seen and all(status == 200 for status, _ in seen), {s for s, _ in seen}
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # one switch, never back
    assert 'fraudkeras_model_version{model="fraud"} 2.0' in metrics
    assert 'fraudkeras_model_loads_total{model="fraud",outcome="failed"} 1.0' in metrics


def _wait_for(condition, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_sigterm_drains_and_exits_zero(served_run: Path, tmp_path: Path) -> None:
    server = launch(served_run, tmp_path / "serve.log", "--access-log")
    answers: list[int] = []

    def request() -> None:
        answers.append(httpx.post(f"{server.url}/v2/models/fraud/infer", json=REQUEST).status_code)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert server.stop() == 0, server.output()
    assert answers == [200] * 4
    assert "POST /v2/models/fraud/infer" in server.output()  # --access-log
    assert "stopped (signal 15)" in server.output()
