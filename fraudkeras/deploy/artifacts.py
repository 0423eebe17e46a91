"""Opening and running a model in any of the forms fraudkeras writes: a ``.keras``
file, a SavedModel folder, a LiteRT ``.tflite`` file or an ``.onnx`` file.

Every artifact answers the same question the same way: raw transactions in, fraud
probabilities (a flat float64 array) out. Transactions are a DataFrame or a dict of
columns, matched by name, or an array in :data:`fraudkeras.data.schema.FEATURES`
order (:mod:`fraudkeras.data.feature_matrix`). Export verification and
``fraudkeras score`` both go through here, so a file is checked exactly the way it
will be used.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fraudkeras._core.backend import is_installed
from fraudkeras._core.errors import BackendError, ModelFileError, first_line
from fraudkeras._core.files import read_json
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.data.feature_matrix import feature_matrix
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.formats import RUNTIME_OF_SUFFIX
from fraudkeras.runs.checksums import mismatch, sha256_bytes, sha256_path, verified_copy
from fraudkeras.runs.layout import MANIFEST_FILE

SIGNATURE, INPUT_NAME, OUTPUT_NAME = "serve", "transactions", "fraud_probability"
#: what each runtime needs installed, for the error message when it is not
_NEEDS = {
    "saved_model": ("tensorflow", "tensorflow"),
    "litert": ("ai_edge_litert", "tensorflow"),
    "onnx": ("onnxruntime", "export"),
}
#: max |Δp| between a model's outputs on the manifest's probe rows and the recorded
#: ones: the same file on the same runtime differs only by CPU kernels (measured < 1e-7)
PROBE_TOLERANCE = 1e-5


class Artifact(Protocol):
    """A loaded model of any kind."""

    kind: str
    path: Path

    def predict(self, features: Any) -> np.ndarray:
        """Fraud probabilities for raw ``features`` (a table or n x 30), flat float64."""
        ...


def kind_of(path: Path) -> str:
    """``keras``, ``saved_model``, ``litert`` or ``onnx``, from the path alone."""
    if path.is_dir():
        return "saved_model"
    suffix = path.suffix.lower()
    if suffix not in RUNTIME_OF_SUFFIX:
        raise ModelFileError(
            f"{path}: unknown model type {suffix or '(none)'!r}; expected a .keras, .tflite "
            "or .onnx file or a SavedModel folder"
        )
    return RUNTIME_OF_SUFFIX[suffix]


def open_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load ``path`` with the runtime its kind needs, after checking it against what
    its run recorded (the manifest beside an export, ``checksums.json`` beside a
    run's ``.keras``): its sha256, then its outputs on the recorded probe rows.
    Files are read once into memory, so a change on disk cannot reach a loaded
    model. Raise ModelFileError if the file is missing, damaged or not the one
    recorded, BackendError if its runtime is not installed."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file or folder")
    kind = kind_of(path)
    if kind in _NEEDS:
        module, extra = _NEEDS[kind]
        if not is_installed(module):
            raise BackendError(
                f"{path}: running a {kind} model needs {module}: pip install 'fraudkeras[{extra}]'"
            )
    if kind == "keras":
        return KerasArtifact(path)
    entry, manifest = recorded_entry(path)
    if kind == "saved_model":
        check_saved_model_ops(path)
        if entry is not None:
            check_sha256(path, sha256_path(path), entry, manifest)
        artifact: Artifact = SavedModelArtifact(path)
    else:
        content = read_model_bytes(path)
        if entry is not None:
            check_sha256(path, sha256_bytes(content), entry, manifest)
        runtime = LiteRTArtifact if kind == "litert" else OnnxArtifact
        artifact = runtime(path, content)
    if entry is not None:
        check_probe(artifact, entry, manifest)
    return artifact


def read_model_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror})") from error


def recorded_entry(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """What the export manifest beside ``path`` records for it (None: no manifest).
    A manifest that does not list the file refuses it: its threshold belongs to
    another model."""
    manifest_path = path.parent / MANIFEST_FILE
    if not manifest_path.is_file():
        return None, {}
    manifest = read_json(manifest_path)
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    for entry in (artifacts or {}).values():
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return entry, manifest
    raise ModelFileError(
        f"{path}: not listed in {manifest_path}; its recorded threshold and checks belong to "
        "other files (move the model out of that folder, or export again)"
    )


def check_sha256(path: Path, found: str, entry: dict[str, Any], manifest: dict[str, Any]) -> None:
    recorded = entry.get("sha256")
    if recorded != found:
        raise mismatch(path, found, str(recorded), path.parent / MANIFEST_FILE)


def check_probe(artifact: Artifact, entry: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The model's outputs on the manifest's probe rows must be the recorded ones
    (manifests written before probes were recorded have none to compare)."""
    rows, recorded = manifest.get("probe", {}).get("rows"), entry.get("probe")
    if rows is None or recorded is None:
        return
    try:
        found = artifact.predict(np.asarray(rows, dtype=np.float32))
    except Exception as error:  # runtimes raise many kinds on a broken graph
        raise ModelFileError(f"{artifact.path}: fails on the probe rows ({error})") from error
    gap = float(np.max(np.abs(found - np.asarray(recorded, dtype=np.float64))))
    if not gap <= PROBE_TOLERANCE:
        raise ModelFileError(
            f"{artifact.path}: on the manifest's probe rows it differs from the recorded "
            f"outputs by {gap:.3g} (limit {PROBE_TOLERANCE:g}): not the model that was exported"
        )


#: Ops a SavedModel's signatures may run: those ``fraudkeras export`` produces for
#: the model's forward pass, plus element-wise and shape arithmetic Keras layers
#: emit. Nothing that reads or writes files, talks to the network or calls Python.
SAVED_MODEL_OPS = frozenset({
    "AddV2", "BiasAdd", "ConcatV2", "Const", "Cos", "FloorMod", "Identity", "Log", "MatMul",
    "Maximum", "Mul", "NoOp", "Placeholder", "ReadVariableOp", "RealDiv", "Relu", "Sigmoid",
    "Sin", "SplitV", "Sqrt", "StatefulPartitionedCall", "PartitionedCall", "StridedSlice",
    "Sub", "VarHandleOp", "Abs", "Add", "Cast", "Exp", "ExpandDims", "Fill", "Floor",
    "GatherV2", "Minimum", "Neg", "Pack", "Pow", "Reshape", "Rsqrt", "Select", "SelectV2",
    "Shape", "Softplus", "Square", "Squeeze", "Sum", "Mean", "Tanh", "Unpack", "Elu",
    "LeakyRelu", "Selu", "Erf", "Softmax", "Less", "Greater", "LessEqual",
    "GreaterEqual", "Equal", "LogicalAnd", "LogicalOr", "LogicalNot", "Transpose", "Tile",
})  # fmt: skip


def check_saved_model_ops(path: Path) -> None:
    """Refuse a SavedModel whose signatures (or load-time init op) reach any op
    outside :data:`SAVED_MODEL_OPS`: loading and calling it would run that op
    (``tf.io.write_file``, ``tf.py_function``...). Read from ``saved_model.pb``
    alone, before TensorFlow loads anything."""
    from tensorflow.core.protobuf import saved_model_pb2

    graph_file = path / "saved_model.pb"
    if not graph_file.is_file():
        raise ModelFileError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(graph_file.read_bytes())
    except Exception as error:  # protobuf's DecodeError, or a truncated file
        raise ModelFileError(f"{path}: not a valid SavedModel ({first_line(error)})") from error
    found = set()
    for graph in saved.meta_graphs:
        found |= _reachable_ops(graph)
    outside = sorted(found - SAVED_MODEL_OPS)
    if outside:
        raise ModelFileError(
            f"{path}: SavedModel runs op(s) {', '.join(outside[:5])} that fraudkeras export "
            "never writes (file, network or Python calls?); refusing to load it"
        )


def _reachable_ops(graph: Any) -> set[str]:
    """Ops reachable from the graph's signatures, through nodes' inputs and the
    functions their attributes call."""
    nodes = {node.name: node for node in graph.graph_def.node}
    library = {f.signature.name: f for f in graph.graph_def.library.function}
    ops: set[str] = set()
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    stack = [t.name for sig in graph.signature_def.values() for t in sig.outputs.values()]
    functions: list[str] = []
    while stack or functions:
        if functions:
            name = functions.pop()
            if name in seen_functions:
                continue
            seen_functions.add(name)
            if name not in library:
                ops.add(f"(missing function {name})")
                continue
            for node in library[name].node_def:
                _visit(node, library, ops, functions)
            continue
        name = stack.pop().lstrip("^").split(":")[0]
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        _visit(nodes[name], library, ops, functions)
        stack.extend(nodes[name].input)
    return ops


def _visit(node: Any, library: dict[str, Any], ops: set[str], functions: list[str]) -> None:
    """Note a node's op (a library function's name is a call) and what it calls."""
    if node.op in library:
        functions.append(node.op)
    else:
        ops.add(node.op)
    functions.extend(_called(node))


def _called(node: Any) -> list[str]:
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return names


def _as_input(features: Any) -> np.ndarray:
    """Frames and dicts by column name, arrays in FEATURES order (one rule for all kinds)."""
    return feature_matrix(features)


class KerasArtifact:
    """A ``.keras`` file's checked bytes, run by the active Keras backend."""

    kind = "keras"

    def __init__(self, path: Path) -> None:
        from fraudkeras.modeling.model import load_model

        self.path = path
        with verified_copy(path) as checked:  # its run's checksums.json, when beside it
            self.model = load_model(checked)

    def predict(self, features: Any) -> np.ndarray:
        from fraudkeras.modeling.model import fraud_probabilities

        return fraud_probabilities(self.model, _as_input(features))


class SavedModelArtifact:
    """A SavedModel folder with the ``serve`` signature fraudkeras writes (its ops
    checked by :func:`check_saved_model_ops` before this loads it)."""

    kind = "saved_model"

    def __init__(self, path: Path) -> None:
        with c_output_silenced():  # TensorFlow's C++ start-up lines (oneDNN, CPU features)
            import tensorflow as tf

        self.path = path
        if not (path / "saved_model.pb").is_file():
            raise ModelFileError(f"{path}: not a SavedModel folder (no saved_model.pb)")
        try:
            with c_output_silenced():
                loaded = tf.saved_model.load(str(path))
            self._serve = loaded.signatures[SIGNATURE]
        except KeyError:
            raise ModelFileError(f"{path}: SavedModel has no {SIGNATURE!r} signature") from None
        except Exception as error:  # TensorFlow raises many kinds for a damaged folder
            reason = first_line(error)
            raise ModelFileError(f"{path}: cannot load SavedModel ({reason})") from error
        self._loaded = loaded  # the signature needs its owner kept alive
        self._tf = tf

    def predict(self, features: Any) -> np.ndarray:
        inputs = self._tf.constant(_as_input(features))
        result = self._serve(**{INPUT_NAME: inputs})[OUTPUT_NAME]
        return np.asarray(result.numpy(), dtype=np.float64).ravel()


class _Interpreter:
    """One LiteRT interpreter and the batch size it is planned for."""

    def __init__(self, content: bytes, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            with c_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate" from C++
                self.interpreter = Interpreter(model_content=content)
            (source,) = self.interpreter.get_input_details()
            (result,) = self.interpreter.get_output_details()
        except (ValueError, RuntimeError) as error:
            reason = first_line(error)
            raise ModelFileError(f"{path}: not a valid LiteRT model ({reason})") from error
        if list(source["shape"])[-1:] != [N_FEATURES]:
            raise ModelFileError(
                f"{path}: takes input of shape {list(source['shape'])}, not (n, {N_FEATURES})"
            )
        self.input, self.output = source["index"], result["index"]
        self.rows = -1

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self.rows:  # resizing re-plans the graph: only when the size changes
            self.interpreter.resize_tensor_input(self.input, [len(x), N_FEATURES])
            with c_output_silenced():
                self.interpreter.allocate_tensors()
            self.rows = len(x)
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_tensor(self.output), dtype=np.float64).ravel()


#: interpreters a thread keeps, each planned for one batch size: re-planning one for
#: another size costs several times a small batch's inference, and a server's
#: merged batches keep changing size
SIZES_KEPT = 16
#: the most rows an interpreter is planned for; larger inputs run in slices of this
#: size. An interpreter holds the intermediate tensors of the size it is planned for
#: (~37 MB for a 65,536-row batch of ``score``): kept for 16 sizes, that is 600 MB
KEPT_SIZES_UP_TO = 4096


class LiteRTArtifact:
    """A ``.tflite`` file's bytes, run by the LiteRT interpreter. An interpreter is
    not thread-safe: each thread gets its own, built from the same bytes in memory,
    and keeps up to :data:`SIZES_KEPT` of them, one per batch size recently run
    (the least recently used is resized when a new size comes). Larger inputs run
    in slices of :data:`KEPT_SIZES_UP_TO` rows, so no interpreter is ever planned
    for more."""

    kind = "litert"

    def __init__(self, path: Path, content: bytes) -> None:
        self.path = path
        self._content = content
        self._local = threading.local()
        first = _Interpreter(content, path)  # a bad file fails here
        self._local.sized = OrderedDict({first.rows: first})

    def predict(self, features: Any) -> np.ndarray:
        x = _as_input(features)
        if len(x) <= KEPT_SIZES_UP_TO:
            return self._planned_for(len(x)).predict(x)
        slices = range(0, len(x), KEPT_SIZES_UP_TO)
        return np.concatenate([
            self._planned_for(len(part)).predict(part)
            for part in (x[start : start + KEPT_SIZES_UP_TO] for start in slices)
        ])  # fmt: skip

    def _planned_for(self, rows: int) -> _Interpreter:
        """This thread's interpreter planned for ``rows`` rows (planned now if none is)."""
        sized: OrderedDict[int, _Interpreter] | None = getattr(self._local, "sized", None)
        if sized is None:
            sized = self._local.sized = OrderedDict()
        interpreter = sized.get(rows)
        if interpreter is not None:
            sized.move_to_end(rows)
            return interpreter
        if -1 in sized:  # not planned for any size yet
            interpreter = sized.pop(-1)
        elif len(sized) < SIZES_KEPT:
            interpreter = _Interpreter(self._content, self.path)
        else:
            interpreter = sized.popitem(last=False)[1]
        sized[rows] = interpreter
        return interpreter


class OnnxArtifact:
    """An ``.onnx`` file's bytes, run by onnxruntime on the CPU (thread-safe)."""

    kind = "onnx"

    def __init__(self, path: Path, content: bytes) -> None:
        import onnxruntime

        self.path = path
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self._session: Any = onnxruntime.InferenceSession(
                content, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own, unexported kinds
            reason = first_line(error)
            raise ModelFileError(f"{path}: not a valid ONNX model ({reason})") from error
        (source,) = self._session.get_inputs()
        self._input = source.name

    def predict(self, features: Any) -> np.ndarray:
        (result,) = self._session.run(None, {self._input: _as_input(features)})
        return np.asarray(result, dtype=np.float64).ravel()
