"""A training worker: ``python -m fraudkeras.training.worker SPEC``, one of the
processes that :mod:`fraudkeras.training.workers` has the backend start, with the
group's variables set. It trains (or resumes) as the spec says, as one process of
the group; a failure is reported to the launcher
(:func:`~fraudkeras._core.subprocesses.report_failure`), which raises it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import FraudKerasError, ParameterError
from fraudkeras._core.logs import configure_logging
from fraudkeras._core.quiet import DEBUG_VARIABLE
from fraudkeras._core.subprocesses import report_failure


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    spec = json.loads(Path(args[0]).read_text())
    rank = int(os.environ.get("RANK", "0"))
    configure_logging(spec["log_level"] if rank == 0 else "WARNING")
    try:
        _work(spec)
    except BaseException as error:
        report_failure(error)
        if os.environ.get(DEBUG_VARIABLE) or rank != 0:
            import traceback

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
            spec["resume"], data=spec["data"], report=spec["report"], plots=spec["plots"],
            verbose=spec["verbose"], stream_cache=spec["stream_cache"],
        )  # fmt: skip
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
        data, out=spec["out"], force=spec["force"], report=spec["report"], plots=spec["plots"],
        verbose=spec["verbose"], stream=spec["stream"], stream_cache=spec["stream_cache"],
        **{name: getattr(config, name) for name in spec["config"]},
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
