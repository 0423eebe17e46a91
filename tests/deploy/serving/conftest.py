"""Fixtures for the serving tests: an exported run, and ``fraudkeras serve`` started
for real in a subprocess on free loopback ports (stopped with SIGTERM afterwards).
Every test here needs the serve extra and is skipped cleanly without it. They run
under the TensorFlow backend only: the server runs a LiteRT file, whatever the backend."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers import BACKEND

if BACKEND != "tensorflow":
    pytest.skip("served under the tensorflow backend only", allow_module_level=True)
for module in ("starlette", "uvicorn", "grpc", "prometheus_client", "tritonclient.grpc", "httpx"):
    pytest.importorskip(module, reason="needs the serve extra: pip install 'fraudkeras[serve]'")
pytest.importorskip("ai_edge_litert", reason="serves a LiteRT file")

from serving_support import Server, launch  # noqa: E402


@pytest.fixture(scope="session")
def served_run(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained run with only its float32 LiteRT export."""
    from fraudkeras.deploy.export import export

    run = tmp_path_factory.mktemp("serve") / "run"
    shutil.copytree(trained_run.run_dir, run)
    export(run, ("litert",))
    return run


@pytest.fixture(scope="module")
def server(served_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launch(served_run, tmp_path_factory.mktemp("log") / "serve.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def batch(trained_run) -> tuple[np.ndarray, np.ndarray, float]:
    """Test rows, the Keras model's probabilities for them, and the tuned threshold."""
    from fraudkeras.modeling.model import fraud_probabilities

    x = trained_run.split.test.x[:64].astype(np.float32)
    return x, fraud_probabilities(trained_run.model, x), trained_run.metrics["tuned_threshold"]
