"""The one table of model formats: what ``fraudkeras export`` writes, what
``fraudkeras score`` and ``fraudkeras serve`` open, and how each is made and run.

Everything that names a format (the CLI's choices, the export manifest's
precision, the file a run folder's export holds, which runtime a file needs)
reads it from here, so adding a format is one row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One model format."""

    name: str  #: what ``--formats`` and ``--artifact`` call it
    file: str  #: its file (or folder) name in a run folder or its export
    precision: str  #: what runs in which precision (recorded in the manifest)
    converter: str  #: what writes it ("" for the run's own Keras file)
    runtime: str  #: the runtime that runs it: keras, saved_model, litert or onnx
    exported: bool = True  #: written by ``fraudkeras export`` (not the run's own file)
    quantization: str = ""  #: the LiteRT converter's: "", "float16", "dynamic" or "int8"

    @property
    def is_float(self) -> bool:
        """float32 throughout: judged by max |Δp| against Keras, not by PR-AUC."""
        return self.precision == "float32"


# fmt: off
TABLE: tuple[Format, ...] = (
    Format("saved_model", "saved_model", "float32", "keras.export.ExportArchive", "saved_model"),
    Format("litert", "model_float32.tflite", "float32", "TFLiteConverter", "litert"),
    Format("litert-fp16", "model_float16.tflite", "float16 weights, float32 compute",
           "TFLiteConverter (float16)", "litert", quantization="float16"),
    Format("litert-dynamic", "model_dynamic_int8.tflite", "int8 weights, float32 activations",
           "TFLiteConverter (dynamic range)", "litert", quantization="dynamic"),
    Format("litert-int8", "model_int8.tflite",
           "int8 weights and activations; float32 input transform, scaling and interface",
           "TFLiteConverter (full integer, QuantizationDebugger)", "litert",
           quantization="int8"),
    Format("onnx", "model.onnx", "float32", "tf2onnx", "onnx"),
    Format("keras", "model.keras", "float32", "", "keras", exported=False),
)
# fmt: on
BY_NAME = {f.name: f for f in TABLE}
#: every format ``fraudkeras export`` writes, in the order it writes them
EXPORTED = tuple(f.name for f in TABLE if f.exported)
#: every format ``fraudkeras serve --artifact`` may pick from a run folder
SERVABLE = tuple(f.name for f in TABLE)
#: file suffix -> runtime, for a bare model file
RUNTIME_OF_SUFFIX = {".keras": "keras", ".tflite": "litert", ".onnx": "onnx"}


def file_names() -> dict[str, str]:
    """Exported format name -> its file name under ``RUN_DIR/export/``."""
    return {BY_NAME[name].name: BY_NAME[name].file for name in EXPORTED}


def precisions() -> dict[str, str]:
    """Exported format name -> its precision."""
    return {name: BY_NAME[name].precision for name in EXPORTED}
