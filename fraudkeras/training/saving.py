"""Writing a finished run: its folder, then its report from memory."""

from __future__ import annotations

import shutil
from dataclasses import asdict

from fraudkeras.analysis.drift import REFERENCE_FILE, reference_for
from fraudkeras.analysis.report import write_report
from fraudkeras.data.tables import Transactions
from fraudkeras.runs import checkpoint
from fraudkeras.runs.folder import RunFolder, write_run_folder
from fraudkeras.training.output import Output, TrainedRun


def save_run(run: TrainedRun, transactions: Transactions | None, output: Output) -> None:
    """Write the run folder, drop the checkpoint, then the report from memory."""
    assert output.out is not None
    config = {"backend": run.metrics["backend"], "data": run.data["source"], **asdict(run.config)}
    run.run_dir = write_run_folder(
        output.out,
        force=output.force,
        model=run.model,
        config=config,
        metrics=run.metrics,
        history=run.history,
        data=run.data,
        extra={REFERENCE_FILE: reference_for(run.model, run.split.train.x)},
    )
    shutil.rmtree(checkpoint.checkpoint_dir(output.out), ignore_errors=True)
    if output.report:
        folder = RunFolder.of_trained(
            run.run_dir, transactions=transactions, split=run.split, model=run.model,
            holdout=run.holdout,
        )  # fmt: skip
        run.report_dir = write_report(folder, plots=output.plots, force=True)
