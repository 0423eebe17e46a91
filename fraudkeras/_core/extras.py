"""Which ``pip install 'fraudkeras[EXTRA]'`` brings a missing module: an
``ImportError`` deep inside a command becomes one line naming the extra."""

from __future__ import annotations

from fraudkeras._core.errors import BackendError, first_line

#: top-level module -> the extra that installs it
EXTRA_OF_MODULE = {
    "jax": "jax",
    "jaxlib": "jax",
    "torch": "torch",
    "tensorflow": "tensorflow",
    "ai_edge_litert": "tensorflow",
    "tf2onnx": "export",
    "onnx": "export",
    "onnxruntime": "export",
    "pyspark": "spark",
    "pandas": "spark",
    "starlette": "serve",
    "uvicorn": "serve",
    "uvloop": "serve",
    "httptools": "serve",
    "orjson": "serve",
    "grpc": "serve",
    "tritonclient": "serve",
    "prometheus_client": "serve",
}
#: what a command needs beyond the core install, when the module alone does not say
EXTRA_OF_COMMAND = {"serve": "serve", "export": "export"}


def install_hint(extra: str) -> str:
    return f"pip install 'fraudkeras[{extra}]'"


def missing_extra(error: ImportError, command: str | None) -> BackendError:
    """A BackendError naming what is missing and the extra that installs it.

    ``error.name`` names the module for a plain ``ModuleNotFoundError``; other
    import errors (PySpark's own ``[PACKAGE_NOT_INSTALLED] Pandas >= 2.2.0``, a
    version too old) are told by their message and the command that ran."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    text = first_line(error)
    if extra is None and "pandas" in text.lower():
        extra = "spark"
    if extra is None:
        extra = EXTRA_OF_COMMAND.get(command or "", "all")
    what = f"{command} needs" if command else "this needs"
    missing = f"{module}, which is not installed" if module else f"more ({text})"
    return BackendError(f"{what} the '{extra}' extra ({missing}): {install_hint(extra)}")
