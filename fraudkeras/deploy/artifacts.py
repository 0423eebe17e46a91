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
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fraudkeras._core.backend import is_installed
from fraudkeras._core.errors import BackendError, ModelFileError, first_line
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.data.feature_matrix import feature_matrix
from fraudkeras.data.schema import N_FEATURES

SIGNATURE, INPUT_NAME, OUTPUT_NAME = "serve", "transactions", "fraud_probability"
#: what each kind of artifact needs installed, for the error message when it is not
_NEEDS = {
    "saved_model": ("tensorflow", "tensorflow"),
    "litert": ("ai_edge_litert", "tensorflow"),
    "onnx": ("onnxruntime", "export"),
}


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
    kinds = {".keras": "keras", ".tflite": "litert", ".onnx": "onnx"}
    if suffix not in kinds:
        raise ModelFileError(
            f"{path}: unknown model type {suffix or '(none)'!r}; expected a .keras, .tflite "
            "or .onnx file or a SavedModel folder"
        )
    return kinds[suffix]


def open_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load ``path`` with the runtime its kind needs; raise ModelFileError if it
    is missing or damaged, BackendError if that runtime is not installed."""
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
    if kind == "saved_model":
        return SavedModelArtifact(path)
    if kind == "litert":
        return LiteRTArtifact(path)
    return OnnxArtifact(path)


def _as_input(features: Any) -> np.ndarray:
    """Frames and dicts by column name, arrays in FEATURES order (one rule for all kinds)."""
    return feature_matrix(features)


class KerasArtifact:
    """A ``.keras`` file, run by the active Keras backend."""

    kind = "keras"

    def __init__(self, path: Path) -> None:
        from fraudkeras.modeling.model import load_model

        self.path = path
        self.model = load_model(path)

    def predict(self, features: Any) -> np.ndarray:
        from fraudkeras.modeling.model import fraud_probabilities

        return fraud_probabilities(self.model, _as_input(features))


class SavedModelArtifact:
    """A SavedModel folder with the ``serve`` signature fraudkeras writes."""

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


class LiteRTArtifact:
    """A ``.tflite`` file, run by the LiteRT interpreter (input resized per batch)."""

    kind = "litert"

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        try:
            with c_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate" from C++
                self._interpreter = Interpreter(model_path=str(path))
            (source,) = self._interpreter.get_input_details()
            (result,) = self._interpreter.get_output_details()
        except (ValueError, RuntimeError) as error:
            reason = first_line(error)
            raise ModelFileError(f"{path}: not a valid LiteRT model ({reason})") from error
        if list(source["shape"])[-1:] != [N_FEATURES]:
            raise ModelFileError(
                f"{path}: takes input of shape {list(source['shape'])}, not (n, {N_FEATURES})"
            )
        self._input, self._output = source["index"], result["index"]
        self._rows = -1

    def predict(self, features: Any) -> np.ndarray:
        x = _as_input(features)
        if len(x) != self._rows:  # resizing re-plans the graph: only when the size changes
            self._interpreter.resize_tensor_input(self._input, [len(x), N_FEATURES])
            with c_output_silenced():
                self._interpreter.allocate_tensors()
            self._rows = len(x)
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output), dtype=np.float64).ravel()


class OnnxArtifact:
    """An ``.onnx`` file, run by onnxruntime on the CPU."""

    kind = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.path = path
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own, unexported kinds
            reason = first_line(error)
            raise ModelFileError(f"{path}: not a valid ONNX model ({reason})") from error
        (source,) = self._session.get_inputs()
        self._input = source.name

    def predict(self, features: Any) -> np.ndarray:
        (result,) = self._session.run(None, {self._input: _as_input(features)})
        return np.asarray(result, dtype=np.float64).ravel()
