"""Finding, loading and verifying the model one version serves.

A version is a run folder (its float32 LiteRT export by default, exported first if
the run has none), an export folder (``RUN_DIR/export/``), a SavedModel folder
(only with ``--artifact saved_model``) or a single artifact file. It is opened
through :func:`fraudkeras.deploy.artifacts.open_artifact` (as ``fraudkeras score``
opens it: read into memory, sha256 and probe rows checked against its manifest)
and run on a probe batch before it may serve. While it serves, :func:`recheck`
confirms that its file on disk is still the one verified and that the model in
memory still passes the probe.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fraudkeras._core.errors import ModelFileError
from fraudkeras.data.schema import N_FEATURES
from fraudkeras.deploy.artifacts import Artifact, open_artifact
from fraudkeras.deploy.formats import BY_NAME, RUNTIME_OF_SUFFIX
from fraudkeras.deploy.recorded import find_decision
from fraudkeras.deploy.serving.settings import DEFAULT_ARTIFACT
from fraudkeras.metrics.decisions import Decision
from fraudkeras.runs import layout
from fraudkeras.runs.checksums import sha256_path
from fraudkeras.runs.layout import EXPORT_DIR, MANIFEST_FILE

log = logging.getLogger("fraudkeras")
#: runtimes whose loaded model may be called from several threads at once
_THREAD_SAFE = ("litert", "onnx")


@dataclass(frozen=True)
class ServedModel:
    """One loaded, verified version. Requests hold a reference to it, so a swap
    never pulls the model out from under a request in flight."""

    version: int
    artifact: Artifact
    threshold: float
    threshold_source: str
    source: Path
    #: the run's decision (its expected-cost rule, or flag at ``threshold``)
    decision: Decision = field(default_factory=Decision)
    #: sha256 of ``source`` as verified at load (a file, or a SavedModel folder's files)
    sha256: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Fraud probabilities as float32. LiteRT (an interpreter per thread) and
        ONNX run in parallel; Keras and SavedModel calls are serialized."""
        if self.artifact.kind in _THREAD_SAFE:
            return self.artifact.predict(features).astype(np.float32)
        with self.lock:
            return self.artifact.predict(features).astype(np.float32)


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in layout.REQUIRED_FILES)


def locate(path: Path, kind: str = DEFAULT_ARTIFACT, *, export_missing: bool = True) -> Path:
    """The artifact file or folder to open for ``path`` (see the module docstring)."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file or folder")
    if (path / "saved_model.pb").is_file():
        if kind != "saved_model":  # a SavedModel runs TensorFlow graphs: only when asked
            raise ModelFileError(
                f"{path}: is a SavedModel; serve it with --artifact saved_model (its ops are "
                "checked first), or serve the run's LiteRT or ONNX export"
            )
        return path
    if path.is_file():
        return path
    file = BY_NAME[kind].file
    if is_run_dir(path):
        if kind == "keras":
            return path / layout.MODEL_FILE
        target = path / EXPORT_DIR / file
        if not target.exists():
            if not export_missing or (path / EXPORT_DIR).exists():
                raise ModelFileError(
                    f"{path}: its export has no {file}; run "
                    f"`fraudkeras export {path} --force` (with {kind} in --formats)"
                )
            _export(path, kind)
        return target
    if (path / MANIFEST_FILE).is_file() and kind != "keras":
        return path / file
    files = [p for p in path.iterdir() if p.suffix.lower() in RUNTIME_OF_SUFFIX]
    if len(files) == 1:
        return files[0]
    raise ModelFileError(
        f"{path}: not a run folder, export folder, SavedModel or folder with one model file"
    )


def _export(run: Path, kind: str) -> None:
    """Export the one format that is missing, under TensorFlow (as the CLI does)."""
    from fraudkeras._core.backend import use_backend

    if "keras" not in sys.modules:
        use_backend("tensorflow")
    from fraudkeras.deploy.export import export

    log.info("%s has no export: exporting %s first (verified on its test split)", run, kind)
    export(run, (kind,))


def load_version(
    path: Path, version: int, kind: str = DEFAULT_ARTIFACT, threshold: float | None = None
) -> ServedModel:
    """Open and verify ``path``; raise ModelFileError (or BackendError) if it cannot serve."""
    target = locate(path, kind)
    if target.suffix.lower() == ".keras" and "keras" not in sys.modules:
        from fraudkeras._core.backend import BACKENDS, DEFAULT_BACKEND, use_backend

        configured = os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
        use_backend(configured if configured in BACKENDS else DEFAULT_BACKEND)
    artifact = open_artifact(target)
    verify(artifact, target)
    decision, source = find_decision(target, threshold)
    digest = _digest(target)  # read after the checks: a file changed meanwhile fails recheck
    return ServedModel(version, artifact, decision.threshold, source, target, decision, digest)


def recheck(model: ServedModel) -> None:
    """The periodic check of a served model: its file on disk is still the one
    verified at load (one overwritten, truncated or removed is what a restart or a
    new worker would refuse), and the model in memory still passes the probe.
    Raise ModelFileError naming the fault."""
    found = _digest(model.source)
    if found != model.sha256:
        raise ModelFileError(
            f"{model.source}: changed on disk since it was verified (sha256 {found[:12]}..., "
            f"verified {model.sha256[:12]}...); a restart would not serve it"
        )
    verify(model.artifact, model.source)


def _digest(path: Path) -> str:
    try:
        return sha256_path(path)
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror})") from error


def verify(artifact: Artifact, path: Path) -> None:
    """Run a probe batch and a single row: one probability in [0, 1] per row, and the
    row scored alone as in the batch. A file that loads but computes garbage fails here."""
    probe = np.random.default_rng(0).normal(size=(8, N_FEATURES)).astype(np.float32)
    probe[:, 0] = np.linspace(0, 172_792, len(probe))  # Time, seconds
    probe[:, -1] = np.linspace(0, 500, len(probe))  # Amount
    try:
        batch = np.asarray(artifact.predict(probe))
        single = np.asarray(artifact.predict(probe[:1]))
    except Exception as error:  # runtimes raise many kinds on a broken graph
        raise ModelFileError(f"{path}: fails on a probe batch ({error})") from error
    if batch.shape != (len(probe),) or single.shape != (1,):
        raise ModelFileError(f"{path}: returns shape {batch.shape} for {len(probe)} rows")
    if not (np.isfinite(batch).all() and ((batch >= 0) & (batch <= 1)).all()):
        raise ModelFileError(f"{path}: returns values that are not probabilities")
    if abs(float(single[0]) - float(batch[0])) > 1e-5:
        raise ModelFileError(f"{path}: a row scored alone differs from the same row in a batch")
    if np.ptp(batch) == 0.0:
        raise ModelFileError(f"{path}: returns the same probability for every probe row")
