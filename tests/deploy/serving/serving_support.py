"""What the serving tests share besides fixtures: free loopback ports and a
``fraudkeras serve`` subprocess that is started, waited for and stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

START_SECONDS = 90.0
TOLERANCE = 1e-5  # max |Δp| between a served float32 model and Keras's own probabilities


def check_flags(flags: list[bool], reference: np.ndarray, threshold: float) -> None:
    """Flags agree with Keras's probabilities at ``threshold`` (rows on the line aside)."""
    clear = np.abs(reference - threshold) > TOLERANCE  # rows far enough from the line
    assert np.array_equal(np.asarray(flags)[clear], (reference >= threshold)[clear])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``fraudkeras serve``; ``stop()`` sends SIGTERM and returns the exit code."""

    process: subprocess.Popen[str]
    port: int
    grpc_port: int
    log: Path
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {START_SECONDS} s: {self.output()}")

    def stop(self, timeout: float = 60.0) -> int:
        if not self.stopped:
            self.stopped = True
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def launch(model: Path, log: Path, *args: str) -> Server:
    """Start ``fraudkeras serve MODEL`` on free ports and wait until it is ready."""
    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "fraudkeras", "serve", str(model), "--port", str(port),
               "--grpc-port", str(grpc_port), "--deregister-seconds", "0", *args]  # fmt: skip
    handle = log.open("w")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, text=True, env=env)
    handle.close()
    server = Server(process, port, grpc_port, log)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server
