"""Models are verified before they decide: another model's file under a run's
manifest, a model that answers a constant, and a SavedModel that runs file I/O are
refused by ``serve`` and ``score`` with one clear error; the served model is held
in memory, so changing or truncating its file on disk changes no answer (it makes
the server unready until a valid newer version serves); at start-up the newest
valid version serves and the broken ones are logged."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_support import TOLERANCE, free_port, launch

import fraudkeras
from fraudkeras._core.errors import ModelFileError
from helpers import run_cli

ROW = [0.5] * 30


@pytest.fixture(scope="module")
def impostors(trained_run, served_run: Path, tmp_path_factory: pytest.TempPathFactory):
    """A valid LiteRT file of another model, one that answers 0.5 for every row, and
    a SavedModel whose signature writes a file when called."""
    import tensorflow as tf

    from fraudkeras.deploy.export import convert_litert, write_saved_model
    from fraudkeras.modeling.model import load_model

    folder = tmp_path_factory.mktemp("impostors")
    other = load_model(served_run / "model.keras")
    kernel = next(w for w in other.weights if len(w.shape) == 2)
    kernel.assign(kernel.numpy() * 1.5)  # another run's weights
    write_saved_model(other, folder / "other_saved_model")
    (folder / "other.tflite").write_bytes(
        convert_litert(folder / "other_saved_model", "litert", trained_run.split.train.x[:200])
    )

    spec = tf.TensorSpec([None, 30], tf.float32, name="transactions")
    constant = tf.function(lambda t: tf.fill([tf.shape(t)[0], 1], 0.5), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([constant.get_concrete_function()])
    (folder / "constant.tflite").write_bytes(converter.convert())

    marker = folder / "written-by-the-model"

    class Writer(tf.Module):
        @tf.function(input_signature=[spec])
        def serve(self, transactions):
            tf.io.write_file(str(marker), "the model ran file I/O")
            return {"fraud_probability": tf.sigmoid(transactions[:, :1])}

    writer = Writer()
    tf.saved_model.save(writer, str(folder / "writer"), signatures={"serve": writer.serve})
    return folder, marker


def _export_with(served_run: Path, target: Path, file: Path) -> Path:
    """The run's export folder with ``file`` in place of its float32 LiteRT model."""
    shutil.copytree(served_run / "export", target)
    shutil.copyfile(file, target / "model_float32.tflite")
    return target


def _one_error(result, fragment: str, code: int = 5) -> None:
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_another_models_file_is_refused_by_serve_and_score(
    served_run: Path, impostors, small_parquet: Path, tmp_path: Path
) -> None:
    folder, _ = impostors
    swapped = _export_with(served_run, tmp_path / "export", folder / "other.tflite")
    port = str(free_port())
    _one_error(run_cli("serve", str(swapped), "--port", port, "--grpc-port", "0"),
               "checksum mismatch")  # fmt: skip
    model = swapped / "model_float32.tflite"
    out = tmp_path / "out.parquet"
    scored = run_cli(
        "score", "--model", str(model), "--data", str(small_parquet), "--out", f"{out}"
    )
    _one_error(scored, "checksum mismatch")
    assert not out.exists()


def test_savedmodel_with_file_io_is_refused_and_never_runs(
    impostors, small_parquet: Path, tmp_path: Path
) -> None:
    folder, marker = impostors
    with pytest.raises(ModelFileError, match="WriteFile"):
        fraudkeras.score(folder / "writer", small_parquet, tmp_path / "out.parquet")
    port = str(free_port())
    served = run_cli("serve", str(folder / "writer"), "--artifact", "saved_model",
                     "--port", port, "--grpc-port", "0")  # fmt: skip
    _one_error(served, "WriteFile")
    assert not marker.exists()


def test_our_own_savedmodel_passes_the_op_check(impostors, trained_run) -> None:
    """What ``fraudkeras export`` writes is within the allow-list (and runs as Keras does)."""
    from fraudkeras.deploy.artifacts import open_artifact
    from fraudkeras.modeling.model import fraud_probabilities

    folder, _ = impostors
    x = trained_run.split.test.x[:32]
    other = open_artifact(folder / "other_saved_model").predict(x)
    assert other.shape == (32,) and np.isfinite(other).all()
    saved = folder / "ours"
    from fraudkeras.deploy.export import write_saved_model

    write_saved_model(trained_run.model, saved)
    ours = open_artifact(saved).predict(x)
    assert np.max(np.abs(ours - fraud_probabilities(trained_run.model, x))) <= TOLERANCE


def test_newest_valid_version_serves_and_the_file_on_disk_cannot_touch_it(
    served_run: Path, impostors, batch, tmp_path: Path
) -> None:
    folder, marker = impostors
    x, reference, _ = batch
    repository = tmp_path / "models"
    repository.mkdir()
    shutil.copytree(served_run / "export", repository / "1")
    _export_with(served_run, repository / "2", folder / "other.tflite")
    (repository / "3").mkdir()
    shutil.copyfile(folder / "constant.tflite", repository / "3" / "model.tflite")
    server = launch(repository, tmp_path / "serve.log", "--poll-seconds", "0.2", "--grpc-port", "0")
    try:
        log = server.output()
        assert "version 3 not loaded" in log and "same probability" in log
        assert "version 2 not loaded" in log and "checksum mismatch" in log

        def probabilities() -> np.ndarray:
            answer = httpx.post(f"{server.url}/v1/models/fraud:predict",
                                json={"instances": x.tolist()})  # fmt: skip
            assert answer.status_code == 200, answer.text
            return np.array([p["fraud_probability"] for p in answer.json()["predictions"]])

        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE
        served = repository / "1" / "model_float32.tflite"
        shutil.copyfile(folder / "other.tflite", served)  # overwritten in place
        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE
        served.write_bytes(b"")  # truncated
        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE
        deadline = time.monotonic() + 20  # the re-check finds the file changed: not ready
        while httpx.get(f"{server.url}/v2/health/ready").status_code != 503:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE

        shutil.copytree(folder / "writer", repository / "4")  # a SavedModel: never asked for
        deadline = time.monotonic() + 20
        while "version 4 not loaded" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "is a SavedModel" in server.output()
        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE
        assert not marker.exists()

        shutil.copytree(served_run / "export", repository / "5")  # a valid new version
        while httpx.get(f"{server.url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline + 20, server.output()
            time.sleep(0.05)
        assert "now serving version 5" in server.output()
        assert np.max(np.abs(probabilities() - reference)) <= TOLERANCE
    finally:
        code = server.stop()
    assert code == 0, server.output()
    assert "Traceback" not in server.output()
