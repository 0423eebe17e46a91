"""Exporting a run's model for serving without Keras: a TensorFlow SavedModel,
LiteRT files (float32, float16, dynamic-range int8, full-integer int8) and ONNX.
Each artifact is re-opened and run on the test split (through
:mod:`fraudkeras.deploy.artifacts`, as ``fraudkeras score`` runs it) and kept only if it
agrees with the Keras model.

Export needs TensorFlow. Under another backend, the ``.keras`` file is re-loaded
in a TensorFlow-backend subprocess (models load across backends), so a model
trained anywhere exports with one call.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from fraudkeras._core import interrupts
from fraudkeras._core.backend import active_backend, is_installed
from fraudkeras._core.errors import BackendError, ExportError, ParameterError, first_line
from fraudkeras._core.files import atomic_dir, check_output_dir, read_json, write_json
from fraudkeras._core.provenance import environment
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras._core.subprocesses import run_job
from fraudkeras.data.schema import FEATURES
from fraudkeras.deploy.artifacts import INPUT_NAME, OUTPUT_NAME, SIGNATURE, open_artifact
from fraudkeras.deploy.formats import BY_NAME, EXPORTED, file_names, precisions
from fraudkeras.metrics.classification import thresholds_record
from fraudkeras.runs.checksums import sha256_path
from fraudkeras.runs.folder import RunFolder
from fraudkeras.runs.layout import EXPORT_DIR, MANIFEST_FILE, check_run_dir

#: format name -> file or folder written under RUN_DIR/export/ (from the one format table)
FORMATS = file_names()
#: format name -> what runs in which precision (recorded in the manifest)
PRECISION = precisions()
FLOAT_FORMATS = tuple(name for name in EXPORTED if BY_NAME[name].is_float)
MAX_FLOAT_DIFF = 1e-5  # max |Δp| for float32 artifacts
MAX_PR_AUC_LOSS = 0.01  # quantized artifacts may rank worse than the Keras model by this much
REPRESENTATIVE_ROWS = 500  # training rows that calibrate full-integer quantization
ONNX_OPSET = 17
#: test rows whose outputs each artifact records, re-checked whenever it is loaded
PROBE_ROWS = 8
#: LiteRT ops of the input transform and scaling, kept float32 in the full-integer file
FLOAT_OPS = ("SPLIT_V", "MUL", "FLOOR_MOD", "SIN", "COS", "RELU", "ADD", "LOG", "SUB")
FLOAT_OPS_CONCAT = "CONCATENATION"


def export(
    run_dir: str | os.PathLike[str],
    formats: tuple[str, ...] = tuple(FORMATS),
    *,
    force: bool = False,
    data: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write ``RUN_DIR/export/`` (atomically) and return its manifest. ``data``
    says where the run's training table is now, if it moved (the artifacts are
    verified on its test split)."""
    folder = check_run_dir(Path(run_dir))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        named = ", ".join(unknown) or "(none)"
        raise ParameterError(
            f"formats: unknown export format(s) {named}; choose from {', '.join(FORMATS)}"
        )
    check_output_dir(folder / EXPORT_DIR, force=force)
    if not is_installed("tensorflow"):
        raise BackendError("exporting needs TensorFlow: pip install 'fraudkeras[export]'")
    if "onnx" in formats and not (is_installed("tf2onnx") and is_installed("onnxruntime")):
        raise BackendError(
            "ONNX export needs tf2onnx and onnxruntime: pip install 'fraudkeras[export]' "
            "(or leave onnx out of formats)"
        )
    if active_backend() != "tensorflow":
        where = "" if data is None else str(Path(data).resolve())
        run_job("tensorflow", "export", folder, ",".join(formats), "force" if force else "", where)
        manifest: dict[str, Any] = read_json(folder / EXPORT_DIR / MANIFEST_FILE)
        return manifest
    return _export_here(RunFolder(folder, data=data), formats, force)


def _export_here(run: RunFolder, formats: tuple[str, ...], force: bool) -> dict[str, Any]:
    from fraudkeras.modeling.model import fraud_probabilities  # Keras, already on TensorFlow

    parts = run.split
    x, y = parts.test.x, parts.test.y
    with c_output_silenced():  # TensorFlow's first ops print absl and oneDNN notices
        model = run.model
        reference = fraud_probabilities(model, x)
    # Artifacts output float32, where p rounds to exactly 1.0 above logit ~17; ties
    # there move PR-AUC by up to ~0.01 with no real change in the model. PR-AUC
    # changes are therefore measured against the Keras output rounded the same way.
    reference_pr_auc = float(average_precision_score(y, reference.astype(np.float32)))

    artifacts: dict[str, dict[str, Any]] = {}
    with atomic_dir(run.path / EXPORT_DIR, force=force) as scratch:
        saved_model = scratch / FORMATS["saved_model"]
        with c_output_silenced():
            write_saved_model(model, saved_model)
        for name in formats:
            interrupts.check()
            path = scratch / FORMATS[name]
            runtime = BY_NAME[name].runtime
            if runtime == "onnx":
                with c_output_silenced():
                    path.write_bytes(convert_onnx(model))
            elif runtime == "litert":
                path.write_bytes(convert_litert(saved_model, name, parts.train.x))
            probabilities = open_artifact(path).predict(x)
            artifacts[name] = _check(name, path, probabilities, reference, y, reference_pr_auc)
        if "saved_model" not in formats:
            shutil.rmtree(saved_model)
        manifest = {
            "features": list(FEATURES),
            "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, len(FEATURES)]},
            "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, 1]},
            "thresholds": thresholds_record(run.metrics),
            "class_weight": run.metrics["class_weight"],
            "training_backend": run.metrics["backend"],
            "test_metrics": run.metrics["test"],
            "reference_pr_auc": reference_pr_auc,
            "probe": {"rows": x[:PROBE_ROWS].astype(np.float32).tolist()},
            "versions": environment(),
            "artifacts": artifacts,
        }
        write_json(scratch / MANIFEST_FILE, manifest)
    return manifest


def _check(
    name: str, path: Path, probabilities: np.ndarray, reference: np.ndarray, labels: np.ndarray,
    reference_pr_auc: float,
) -> dict[str, Any]:  # fmt: skip
    """Compare an artifact's test-split output with the Keras model's; raise if it drifts."""
    max_diff = float(np.max(np.abs(probabilities - reference)))
    pr_auc = float(average_precision_score(labels, probabilities))
    # Float artifacts are judged by |Δp| alone: PR-AUC can move by ~0.01 from 1e-7
    # differences that re-order ties among saturated probabilities (p == 1.0).
    if name in FLOAT_FORMATS:
        if max_diff > MAX_FLOAT_DIFF:
            raise ExportError(f"{path.name}: max |Δp| {max_diff:.2e} exceeds {MAX_FLOAT_DIFF:g}")
    elif reference_pr_auc - pr_auc > MAX_PR_AUC_LOSS:  # a gain is no reason to refuse
        raise ExportError(
            f"{path.name}: PR-AUC {pr_auc:.4f} is more than {MAX_PR_AUC_LOSS} below the "
            f"Keras model's {reference_pr_auc:.4f}"
        )
    return {
        "file": path.name,
        "precision": PRECISION[name],
        "size_bytes": _size(path),
        "sha256": sha256_path(path),
        "probe": [float(v) for v in probabilities[:PROBE_ROWS]],
        "max_abs_diff": max_diff,
        "pr_auc": pr_auc,
        "pr_auc_change": pr_auc - reference_pr_auc,
    }


def write_saved_model(model: Any, path: Path) -> None:
    """A SavedModel with one named signature: raw transactions in, probabilities out."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda transactions: {OUTPUT_NAME: model(transactions)},
        input_signature=[tf.TensorSpec([None, len(FEATURES)], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def convert_litert(saved_model: Path, name: str, training_features: np.ndarray) -> bytes:
    """Convert with built-in ops only (no Flex), so a plain mobile runtime runs it."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    quantization = BY_NAME[name].quantization
    if quantization in ("float16", "dynamic"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        with c_output_silenced():  # the converter prints "fully_quantize: 0, ..." from C++
            if quantization == "int8":
                return _full_integer(converter, training_features)
            content: bytes = converter.convert()
    except ExportError:
        raise
    except Exception as error:  # the converter raises many kinds
        raise ExportError(f"LiteRT conversion ({name}) failed: {first_line(error)}") from error
    return content


def _full_integer(converter: Any, training_features: np.ndarray) -> bytes:
    """Full-integer int8: every dense layer runs in int8, calibrated on training
    rows; the input transform and scaling ahead of them stay float32.

    The raw input cannot share one int8 scale: ``Time`` reaches 172,792 while
    the V features live within about ±50, so a per-tensor scale of ~680 per
    step rounds every V feature to zero (PR-AUC fell by 0.79 when we tried).
    After the scaling, every feature is in standard units and int8 fits.
    Selective quantization is what TensorFlow's QuantizationDebugger offers
    for exactly this (``denylisted_ops``). The transform's ops must stay float too:
    quantized, its first slice would round the raw input to int8 as well, and
    ``Time`` (up to ~1.7e9) with it.
    """
    import tensorflow as tf

    rows = np.random.default_rng(0).choice(
        len(training_features), min(REPRESENTATIVE_ROWS, len(training_features)), replace=False
    )

    def representative() -> Any:
        for row in rows:
            yield [training_features[row : row + 1].astype(np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():  # it runs tf.lite.Interpreter, which warns it is deprecated
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=representative,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=[*FLOAT_OPS, FLOAT_OPS_CONCAT]
            ),
        )
        content: bytes = debugger.get_nondebug_quantized_model()
    return content


def convert_onnx(model: Any) -> bytes:
    """The model's forward pass as ONNX (tf2onnx), with the same names as the
    SavedModel signature: ``transactions`` in, ``fraud_probability`` out."""
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec([None, len(FEATURES)], tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=spec)
    def serve(transactions: Any) -> dict[str, Any]:
        return {OUTPUT_NAME: model(transactions)}

    try:
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=ONNX_OPSET)
    except Exception as error:  # tf2onnx raises many kinds
        raise ExportError(f"ONNX conversion failed: {first_line(error)}") from error
    content: bytes = proto.SerializeToString()
    return content


def _size(path: Path) -> int:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return sum(p.stat().st_size for p in files)
