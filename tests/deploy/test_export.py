"""Export from a model trained under this env's backend (through a TensorFlow
subprocess where that backend is not TensorFlow); every artifact is re-opened."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraudkeras._core.errors import ModelFileError, OutputError, ParameterError
from fraudkeras.data.schema import FEATURES
from fraudkeras.deploy.artifacts import open_artifact
from fraudkeras.deploy.export import (
    FLOAT_OPS,
    FLOAT_OPS_CONCAT,
    FORMATS,
    MAX_PR_AUC_LOSS,
    PRECISION,
    export,
)
from fraudkeras.modeling.model import fraud_probabilities
from helpers import BACKEND, run_cli


def test_manifest_describes_every_artifact(exported, trained_run) -> None:
    run, manifest = exported
    assert json.loads((run / "export" / "manifest.json").read_text()) == manifest
    assert set(manifest["artifacts"]) == set(FORMATS)
    assert manifest["features"] == list(FEATURES)
    assert manifest["training_backend"] == BACKEND
    assert manifest["thresholds"]["tuned"] == trained_run.metrics["tuned_threshold"]
    assert manifest["class_weight"] == trained_run.metrics["class_weight"]
    assert manifest["test_metrics"]["pr_auc"] == trained_run.metrics["test"]["pr_auc"]
    for name, artifact in manifest["artifacts"].items():
        path = run / "export" / artifact["file"]
        if path.is_file():
            assert artifact["size_bytes"] == path.stat().st_size
            assert artifact["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert artifact["precision"] == PRECISION[name]
    sizes = {name: a["size_bytes"] for name, a in manifest["artifacts"].items()}
    assert sizes["litert-dynamic"] < sizes["litert-fp16"] < sizes["litert"]
    # The deployment target for the int8 file was 12 KiB (raw inputs: 11,472 B); the
    # transform's float ops and tensors add 1.7-2.8 KB (measured 13,144 B for time_of_day,
    # 14,232 B for time_of_day_log_amount).
    assert sizes["litert-int8"] <= 14 * 1024
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no scratch left


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "saved_model"])
def test_file_artifacts_agree_with_the_keras_model(exported, trained_run, name: str) -> None:
    run, manifest = exported
    test = trained_run.split.test
    reference = fraud_probabilities(trained_run.model, test.x)
    path = run / "export" / FORMATS[name]
    artifact = open_artifact(path)
    probabilities = artifact.predict(test.x)
    assert probabilities.shape == reference.shape
    if name in ("litert", "onnx"):
        assert np.max(np.abs(probabilities - reference)) <= 1e-5
    else:
        as_float32 = reference.astype(np.float32)  # the precision every artifact outputs
        change = average_precision_score(test.y, probabilities) - average_precision_score(
            test.y, as_float32
        )
        assert change >= -MAX_PR_AUC_LOSS
        assert manifest["artifacts"][name]["pr_auc_change"] == pytest.approx(change, abs=1e-9)
    # one transaction at a time, as a phone would call it, then a batch again
    assert artifact.predict(test.x[:1])[0] == pytest.approx(probabilities[0], abs=1e-6)
    # onnxruntime's Sin/Cos (the time-of-day transform) round a 5-row batch differently
    # from a large one by an ulp: measured |Δp| 3e-8 (TensorFlow-trained run)
    np.testing.assert_allclose(artifact.predict(test.x[:5]), probabilities[:5], rtol=0, atol=2e-7)


def test_int8_file_computes_its_layers_in_int8(exported) -> None:
    from ai_edge_litert.interpreter import Interpreter

    run, _ = exported
    interpreter = Interpreter(model_path=str(run / "export" / FORMATS["litert-int8"]))
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    layers = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    assert len(layers) == 4
    for op in layers:  # input activations and weights of every dense layer are int8
        assert tensors[op["inputs"][0]]["dtype"] == np.int8
        assert tensors[op["inputs"][1]]["dtype"] == np.int8
    # only the input transform (time of day) and scaling stay float, before the one QUANTIZE
    names = [op["op_name"] for op in ops]
    assert names.count("QUANTIZE") == 1
    assert names.index("QUANTIZE") < names.index("FULLY_CONNECTED")
    floats = set(names[: names.index("QUANTIZE")])
    assert {"FLOOR_MOD", "SIN", "COS", "MUL", "SUB"} <= floats <= {*FLOAT_OPS, FLOAT_OPS_CONCAT}
    quantize = next(op for op in ops if op["op_name"] == "QUANTIZE")
    assert tensors[quantize["inputs"][0]]["dtype"] == np.float32
    assert "FlexDelegate" not in str(ops)


def test_saved_model_serves_raw_transactions(exported, trained_run) -> None:
    import tensorflow as tf

    run, _ = exported
    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serve"]
    (_, inputs) = serve.structured_input_signature
    assert inputs["transactions"].shape.as_list() == [None, 30]
    assert inputs["transactions"].dtype == tf.float32
    x = trained_run.split.test.x
    out = serve(transactions=tf.constant(x))["fraud_probability"].numpy()
    assert out.shape == (len(x), 1)
    assert np.max(np.abs(out.ravel() - fraud_probabilities(trained_run.model, x))) <= 1e-5


def test_existing_export_needs_force(exported) -> None:
    run, _ = exported
    with pytest.raises(OutputError, match="export: exists already"):
        export(run)


def test_unknown_format_is_refused(exported) -> None:
    run, _ = exported
    with pytest.raises(ParameterError, match="unknown export format"):
        export(run, ("litert", "coreml"), force=True)


def test_truncated_model_exports_nothing(trained_run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"model\.keras: checksum mismatch"):
        export(run)
    assert sorted(p.name for p in run.iterdir() if p.name.startswith((".", "export"))) == []


def test_cli_missing_run_folder(tmp_path: Path) -> None:
    done = run_cli("export", str(tmp_path / "nope"))
    assert done.returncode == 5
    assert done.stderr.strip().splitlines() == [
        f"fraudkeras: error: {tmp_path / 'nope'}: no such run folder"
    ]


def test_quantized_artifacts_may_not_lose_pr_auc_but_may_gain(tmp_path: Path) -> None:
    from fraudkeras._core.errors import ExportError
    from fraudkeras.deploy.export import _check

    path = tmp_path / "model_int8.tflite"
    path.write_bytes(b"tflite")
    y = np.array([0, 0, 1, 0, 1, 0])
    reference = np.array([0.1, 0.2, 0.9, 0.3, 0.8, 0.05])  # perfect ranking: PR-AUC 1.0
    worse = np.array([0.1, 0.85, 0.9, 0.3, 0.8, 0.05])  # one normal above a fraud
    with pytest.raises(ExportError, match=r"model_int8.tflite: PR-AUC 0.8333 is more than 0.01"):
        _check("litert-int8", path, worse, reference, y, 1.0)
    gained = _check("litert-int8", path, reference, worse, y, 0.8333)
    assert gained["pr_auc"] == 1.0 and gained["pr_auc_change"] > 0.1
