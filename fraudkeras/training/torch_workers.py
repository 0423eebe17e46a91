"""``train(devices=N)`` under PyTorch: data-parallel training with ``torch.distributed``.

Keras 3's ``keras.distribution`` does not support torch, so N processes train
together, one per device (CPU, ``gloo``), the way ``torchrun`` runs them:

- **Launching** (:func:`launch_train`): ``train(devices=N)`` / ``fraudkeras train
  --devices N`` starts N ``python -m fraudkeras.training.torch_workers SPEC``
  processes on this host with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR=127.0.0.1`` and a free ``MASTER_PORT``, shows rank 0's output,
  and waits. A failed worker ends the others and becomes one error (its own
  class and message when it raised a fraudkeras error); Ctrl-C or SIGTERM ends
  them all.
- **Joining** (:func:`fraudkeras.training.torch_group.group`): a process that
  finds ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set (a
  launched worker, or ``torchrun`` on one or several hosts) joins that group
  instead of starting workers.

Every process loads the same data, builds the same seeded model and reads the
same global batches; each trains on its slice of every batch and the gradients
are all-reduced (:mod:`fraudkeras.modeling.train_steps.torch_parallel_steps`), so
the weights stay identical everywhere and equal a one-process run's, up to
float32 rounding. Every process validates (identically); rank 0's epoch logs are
broadcast before the early-stopping decision (``torch_group.SameLogs``) so all stop at
the same epoch. Only rank 0 writes: checkpoints, the run folder and the report.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkeras._core import errors
from fraudkeras._core.backend import quiet_environment
from fraudkeras._core.errors import FraudKerasError, ParameterError, TrainingError, first_line
from fraudkeras._core.quiet import DEBUG_VARIABLE
from fraudkeras.training.torch_group import LAUNCHED_VARIABLE

if TYPE_CHECKING:
    from fraudkeras.training.train import TrainedRun, _Output

log = logging.getLogger("fraudkeras")

MODULE = "fraudkeras.training.torch_workers"
_POLL_S = 0.1
_STOP_GRACE_S = 10.0


# -- launching workers -------------------------------------------------------------


def launch_train(
    data: Any,
    output: _Output,
    config: Any,
    stream: bool,
    resume_dir: Path | None = None,
    resume_data: str | None = None,
) -> TrainedRun:
    """Train on ``data`` (or, with ``resume_dir``, resume, the workers reading
    ``resume_data`` or the recorded data) on ``output.devices`` worker processes;
    the :class:`TrainedRun` that rank 0 wrote, loaded back."""
    from dataclasses import asdict

    from fraudkeras.data.tables import Transactions

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
            "errors": scratch,
        }
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        run_workers(spec_path, output.devices, Path(scratch))
        return _load_run(out, data, config, stream, temporary=output.out is None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_environment(rank: int, world: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        **quiet_environment(),
        "KERAS_BACKEND": "torch",
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        LAUNCHED_VARIABLE: "1",  # global batches, not each worker's own files
    }


def run_workers(spec: Path, world: int, scratch: Path) -> None:
    """Start ``world`` workers on ``spec`` and wait for all; raise the first
    failure's error after ending the others."""
    port = free_port()
    workers: list[subprocess.Popen[bytes]] = []
    previous = _on_sigterm_interrupt()
    logs = contextlib.ExitStack()  # the other ranks' stderr, for a failure's traceback
    try:
        for rank in range(world):
            quiet = rank != 0
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", MODULE, str(spec)],
                    env=worker_environment(rank, world, port),
                    stdout=subprocess.DEVNULL if quiet else None,
                    stderr=logs.enter_context((scratch / f"rank{rank}.log").open("wb"))
                    if quiet
                    else None,
                    preexec_fn=_die_with_parent(),
                )
            )
        while True:
            codes = [worker.poll() for worker in workers]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed:  # the first to fail; its peers then fail on the lost connection
                time.sleep(_POLL_S)
                raise _worker_error(failed, [w.poll() for w in workers], scratch, world)
            if all(code == 0 for code in codes):
                return
            time.sleep(_POLL_S)
    finally:
        _stop(workers)
        logs.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    running = [worker for worker in workers if worker.poll() is None]
    for worker in running:
        worker.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for worker in running:
        try:
            worker.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _worker_error(
    failed: list[int], codes: list[int | None], scratch: Path, world: int
) -> FraudKerasError:
    """One error for a failed group: a worker's own fraudkeras error if one raised
    it (data, parameters, a diverged loss: the same on every worker), else what
    happened to the first worker that failed."""
    reports = {}
    for rank in range(world):
        path = scratch / f"error-{rank}.json"
        if path.is_file():
            reports[rank] = json.loads(path.read_text())
    for rank in [*failed, *reports]:
        report = reports.get(rank)
        if report is None:
            continue
        kind = getattr(errors, report["kind"], None)
        if isinstance(kind, type) and issubclass(kind, FraudKerasError):
            return kind(report["message"])
    rank = failed[0]
    if rank in reports:
        reason = f"{reports[rank]['kind']}: {reports[rank]['message']}"
    else:
        code = codes[rank]
        assert code is not None
        reason = _exit_reason(code)
    return TrainingError(f"training worker {rank} of {world} failed: {reason}")


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _on_sigterm_interrupt() -> Any:
    """While workers run, SIGTERM interrupts this process like Ctrl-C (so the
    workers are ended too); returns the previous handler (None: unchanged)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _die_with_parent() -> Callable[[], None] | None:
    """For ``preexec_fn`` on Linux: the worker gets SIGTERM when the launching
    process dies (``PR_SET_PDEATHSIG``), even by SIGKILL. The C function is looked
    up here, so that the forked child only calls it."""
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG

    return set_death_signal


def _load_run(out: Path, data: Any, config: Any, stream: bool, temporary: bool) -> TrainedRun:
    """The :class:`TrainedRun` of the run folder rank 0 wrote: model, metrics,
    history and data record from the folder; split and class weights as
    ``train`` makes them (they depend on the data and config only)."""
    from fraudkeras.data.class_weights import ClassWeights
    from fraudkeras.modeling.model import load_model
    from fraudkeras.runs.folder import RunFolder
    from fraudkeras.runs.layout import MODEL_FILE, REPORT_DIR
    from fraudkeras.training import train as training

    folder = RunFolder(out)
    loaded = training._prepare(training._load(data, stream), config)
    parts = loaded.streamed.split if loaded.streamed else training._split_memory(loaded, config)
    weights = folder.metrics["class_weight"]
    run = training.TrainedRun(
        load_model(out / MODEL_FILE),
        config,
        parts,
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


# -- the worker process ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """A worker: ``python -m fraudkeras.training.torch_workers SPEC`` with the
    group's variables set. A failure is written to ``error-RANK.json`` for the
    launcher, which reports it (the worker prints no error itself)."""
    args = list(sys.argv[1:] if argv is None else argv)
    spec = json.loads(Path(args[0]).read_text())
    rank = int(os.environ["RANK"])
    _configure_logging(spec["log_level"] if rank == 0 else logging.WARNING)
    try:
        _work(spec)
    except BaseException as error:
        report = {"kind": type(error).__name__, "message": first_line(error)}
        with contextlib.suppress(OSError):  # the launcher may be gone, and its folder
            Path(spec["errors"], f"error-{rank}.json").write_text(json.dumps(report))
        if os.environ.get(DEBUG_VARIABLE) or rank != 0:
            traceback.print_exc()
        if isinstance(error, FraudKerasError):
            return error.exit_code
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    return 0


def _work(spec: dict[str, Any]) -> None:
    from fraudkeras.data.tables import load_transactions
    from fraudkeras.runs.config import TrainConfig
    from fraudkeras.training.train import resume, train

    if spec["resume"] is not None:
        resume(
            spec["resume"],
            data=spec["data"],
            report=spec["report"],
            plots=spec["plots"],
            verbose=spec["verbose"],
            stream_cache=spec["stream_cache"],
        )
        return
    data: Any = spec["data"]
    if spec["expected"] is not None:
        data = load_transactions(data)
        if data.fingerprint() != spec["expected"]:
            raise ParameterError(
                f"devices > 1: the table given to train() is not the one its source "
                f"{data.source} holds (each worker loads it from there); save it as a "
                "Parquet file and pass its path"
            )
    config = TrainConfig.from_record(spec["config"])
    train(
        data,
        out=spec["out"],
        force=spec["force"],
        report=spec["report"],
        plots=spec["plots"],
        verbose=spec["verbose"],
        stream=spec["stream"],
        stream_cache=spec["stream_cache"],
        **{name: getattr(config, name) for name in spec["config"]},
    )


def _configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fraudkeras: %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


if __name__ == "__main__":
    sys.exit(main())
