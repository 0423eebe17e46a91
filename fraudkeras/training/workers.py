"""Training on devices that live in worker processes (torch's ``--devices N``):
the run's description handed to the workers (:mod:`fraudkeras.training.worker`),
started by the backend (:meth:`fraudkeras.backends.Backend.launch`), and the run
rank 0 wrote, loaded back."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import ParameterError
from fraudkeras.backends import current
from fraudkeras.data.class_weights import ClassWeights
from fraudkeras.data.tables import Transactions
from fraudkeras.modeling.model import load_model
from fraudkeras.runs.config import TrainConfig
from fraudkeras.runs.folder import RunFolder
from fraudkeras.runs.layout import MODEL_FILE, REPORT_DIR
from fraudkeras.training import sources
from fraudkeras.training.output import Output, TrainedRun

log = logging.getLogger("fraudkeras")

#: the module each worker runs
WORKER_MODULE = "fraudkeras.training.worker"


def launch_train(
    data: Transactions | str,
    output: Output,
    config: TrainConfig,
    stream: bool,
    resume_dir: Path | None = None,
    resume_data: str | None = None,
) -> TrainedRun:
    """Train on ``data`` (or, with ``resume_dir``, resume, the workers reading
    ``resume_data`` or the recorded data) on ``output.devices`` worker processes;
    the :class:`TrainedRun` that rank 0 wrote, loaded back."""
    if output.callbacks:
        raise ParameterError(
            "callbacks= cannot run in the worker processes of devices > 1; train on one device"
        )
    expected, source = None, data if resume_dir is None else resume_data
    if isinstance(data, Transactions) and resume_dir is None:
        source, expected = data.source, data.fingerprint()
    with tempfile.TemporaryDirectory(prefix="fraudkeras-workers-") as scratch:
        out = output.out if output.out is not None else Path(scratch) / "run"
        spec = {
            "resume": None if resume_dir is None else str(resume_dir),
            "data": None if source is None else str(source),
            "expected": expected,
            "stream": stream,
            "stream_cache": output.stream_cache,
            "config": asdict(config),
            "out": str(out),
            "force": output.force,
            "report": output.report and output.out is not None,
            "plots": output.plots,
            "verbose": output.verbose,
            "log_level": log.getEffectiveLevel(),
        }
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        current().launch(output.devices, WORKER_MODULE, [str(spec_path)])
        return _load_run(out, data, config, stream, temporary=output.out is None)


def _load_run(
    out: Path, data: Any, config: TrainConfig, stream: bool, temporary: bool
) -> TrainedRun:
    """The :class:`TrainedRun` of the run folder rank 0 wrote: model, metrics,
    history and data record from the folder; split and class weights as
    ``train`` makes them (they depend on the data and config only)."""
    folder = RunFolder(out)
    loaded = sources.load(sources.table_or_source(data, stream), config)
    weights = folder.metrics["class_weight"]
    run = TrainedRun(
        load_model(out / MODEL_FILE),
        config,
        loaded.parts(config),
        ClassWeights(weights["normal"], weights["fraud"], weights["strategy"]),
        folder.metrics,
        folder.history,
        folder.data_record,
    )
    run.streamed = loaded.streamed
    if not temporary:
        run.run_dir = out
        report = out / REPORT_DIR
        run.report_dir = report if report.is_dir() else None
    return run
