"""``RunFolder``: a finished run, read once. Evaluation, thresholds, export,
explanations, the report and the comparison all start from it, so the way a run
is loaded (config → data → split → model → predictions) is written once.

The run's data is found where it was when the run trained, or beside the run
folder where it was then (so a run folder and its data can move together), or
where the caller points (``data=``). Its fingerprint must match the one
recorded at training time unless the caller asks to evaluate other data.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudkeras._core.errors import DataError
from fraudkeras._core.files import atomic_dir, read_json, write_json
from fraudkeras._core.provenance import environment
from fraudkeras._core.quiet import c_output_silenced
from fraudkeras.data.splits import Split, split
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.data.tables import SOURCES, Transactions, load_transactions
from fraudkeras.metrics.classification import Predictions
from fraudkeras.runs import layout
from fraudkeras.runs.checksums import record_checksums, verified_copy
from fraudkeras.runs.config import TrainConfig
from fraudkeras.runs.scoring import predictions, streamed_predictions

if TYPE_CHECKING:
    from fraudkeras.modeling.model import FraudMLP

log = logging.getLogger("fraudkeras")


def data_record(
    transactions: Transactions, fingerprint: dict[str, Any], parts: Split, run_dir: Path
) -> dict[str, Any]:
    """What ``data.json`` says about a run's data: where it was (absolute, and
    relative to the run folder so both can move together), its fingerprint and
    the split's sizes."""
    record: dict[str, Any] = {
        "source": transactions.source,
        "origin": transactions.origin,
        "fingerprint": fingerprint,
        "split": parts.summary(),
    }
    if transactions.source not in SOURCES:
        record["relative_to_run"] = os.path.relpath(transactions.source, run_dir.resolve())
    return record


def stream_data_record(
    source: str, fingerprint: dict[str, Any], summary: dict[str, Any], run_dir: Path
) -> dict[str, Any]:
    """:func:`data_record` for a streamed table (a folder or glob of Parquet files)."""
    record: dict[str, Any] = {
        "source": source,
        "origin": source,
        "fingerprint": fingerprint,
        "split": summary,
        "stream": True,
    }
    if Path(source).exists():
        record["relative_to_run"] = os.path.relpath(source, run_dir.resolve())
    return record


def write_run_folder(
    target: Path,
    *,
    force: bool,
    model: FraudMLP,
    config: dict[str, Any],
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    data: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a run folder atomically (see :func:`fraudkeras._core.files.atomic_dir`);
    ``extra`` maps more JSON files' names to their content."""
    with atomic_dir(target, force=force) as scratch:
        with c_output_silenced():  # Keras's serializer imports TensorFlow if installed
            model.save(scratch / layout.MODEL_FILE)
        write_json(scratch / layout.CONFIG_FILE, config)
        write_json(scratch / layout.METRICS_FILE, metrics)
        write_json(scratch / layout.HISTORY_FILE, history)
        write_json(scratch / layout.DATA_FILE, data)
        write_json(scratch / layout.ENVIRONMENT_FILE, environment())
        for name, content in (extra or {}).items():
            write_json(scratch / name, content)
        record_checksums(scratch, layout.MODEL_FILE)
    return target


class RunFolder:
    """A finished run folder; each file is read at most once, lazily."""

    @classmethod
    def of_trained(
        cls,
        path: Path,
        *,
        transactions: Transactions | None,
        split: Split,
        model: FraudMLP,
        holdout: tuple[Predictions, Predictions] | None = None,
    ) -> RunFolder:
        """A run that this process has just trained: its data, split, model and
        predictions are taken from memory instead of being loaded again."""
        run = cls(path)
        run.__dict__.update(split=split, model=model)
        if holdout is not None:
            run.__dict__.update(holdout=holdout)
        if transactions is not None:
            run.__dict__.update(transactions=transactions)
        run._fingerprint = run.data_record.get("fingerprint")
        return run

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | None = None,
        allow_other_data: bool = False,
    ) -> None:
        """``data`` overrides where the run's data is read from; with
        ``allow_other_data`` a table other than the training one is accepted
        (evaluating on new data), else a fingerprint mismatch is refused."""
        self.path = layout.check_run_dir(Path(path))
        self._data = data
        self._allow_other_data = allow_other_data
        self._fingerprint: dict[str, Any] | None = None

    @cached_property
    def config(self) -> dict[str, Any]:
        record: dict[str, Any] = read_json(self.path / layout.CONFIG_FILE)
        return record

    @cached_property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_record(self.config)

    @cached_property
    def metrics(self) -> dict[str, Any]:
        record: dict[str, Any] = read_json(self.path / layout.METRICS_FILE)
        return record

    @cached_property
    def history(self) -> dict[str, list[float]]:
        record: dict[str, list[float]] = read_json(self.path / layout.HISTORY_FILE)
        return record

    @cached_property
    def data_record(self) -> dict[str, Any]:
        record: dict[str, Any] = read_json(self.path / layout.DATA_FILE)
        return record

    def update(
        self, *, metrics: dict[str, Any] | None = None, config: dict[str, Any] | None = None
    ) -> None:
        """Rewrite ``metrics.json`` and/or ``config.json`` (atomically) and what this
        object has read of them."""
        if metrics is not None:
            write_json(self.path / layout.METRICS_FILE, metrics)
            self.__dict__["metrics"] = metrics
        if config is not None:
            write_json(self.path / layout.CONFIG_FILE, config)
            self.__dict__["config"] = config
            self.__dict__.pop("train_config", None)

    @property
    def manifest_path(self) -> Path:
        return self.path / layout.EXPORT_DIR / layout.MANIFEST_FILE

    @property
    def backend(self) -> str:
        return str(self.config.get("backend", "jax"))

    @property
    def streamed(self) -> bool:
        """Whether the run streamed its data (a folder or glob of Parquet files)."""
        return bool(self.data_record.get("stream"))

    @cached_property
    def transactions(self) -> Transactions:
        """The run's data (see the module docstring for where it is looked for)."""
        if self.streamed:
            raise DataError(
                f"{self.path}: trained on a streamed table ({self.data_record['source']}); "
                "it is not loaded into memory (use its validation and test splits)"
            )
        transactions = load_transactions(self._data_source())
        recorded = self.data_record.get("fingerprint")
        self._fingerprint = transactions.fingerprint()  # hashes the whole table: once
        if self._fingerprint != recorded:
            if not self._allow_other_data:
                raise DataError(
                    f"{transactions.origin}: not the data {self.path} was trained on "
                    f"(fingerprint differs: {recorded and recorded.get('rows')} rows recorded, "
                    f"{transactions.n_rows} found); pass data= the training file"
                )
            log.warning(
                "data differs from what %s was trained on (fingerprint mismatch): "
                "the split and metrics are not comparable",
                self.path,
            )
        return transactions

    @property
    def data_matches(self) -> bool:
        """Whether the data read is the table the run was trained on."""
        _ = self.split if self.streamed else self.transactions
        return bool(self._fingerprint == self.data_record.get("fingerprint"))

    def _data_source(self) -> str | os.PathLike[str]:
        if self._data is not None:
            return self._data
        source = str(self.data_record.get("source", self.config["data"]))
        if source in SOURCES or Path(source).exists() or (self.streamed and "*" in source):
            return source
        relative = self.data_record.get("relative_to_run")
        if relative and (self.path / relative).exists():
            return self.path / relative
        raise DataError(
            f"{source}: the data {self.path} was trained on is no longer there; "
            "pass data= (the same table, wherever it is now)"
        )

    @cached_property
    def split(self) -> Split:
        """The run's split; for a streamed run, bounded samples of its parts."""
        if self.streamed:
            return self.stream_split.split
        config = self.train_config
        return split(self.transactions, config.split, config.split_seed)

    @cached_property
    def stream_split(self) -> StreamSplit:
        """A streamed run's split, from two passes over its Parquet files
        (fingerprint checked)."""
        from fraudkeras.data.parquet_table import open_table
        from fraudkeras.data.streaming import scan, split_stream

        config = self.train_config
        found = scan(open_table(self._data_source()), config.split, config.split_seed)
        recorded = self.data_record.get("fingerprint")
        self._fingerprint = found.fingerprint
        if found.fingerprint != recorded:
            if not self._allow_other_data:
                raise DataError(
                    f"{found.table.source}: not the data {self.path} was trained on "
                    "(fingerprint differs); pass data= the training files"
                )
            log.warning("data differs from what %s was trained on", self.path)
        return split_stream(found)

    @cached_property
    def model(self) -> FraudMLP:
        from fraudkeras.modeling.model import load_model

        with verified_copy(self.path / layout.MODEL_FILE) as checked:  # refuses another run's
            return load_model(checked)

    @cached_property
    def holdout(self) -> tuple[Predictions, Predictions]:
        """The model's predictions on validation and test, each part whole (a
        streamed run's in one more pass over its files)."""
        if self.streamed:
            return streamed_predictions(self.model, self.stream_split)
        return predictions(self.model, self.split.validation), predictions(
            self.model, self.split.test
        )

    @property
    def validation(self) -> Predictions:
        return self.holdout[0]

    @property
    def test(self) -> Predictions:
        return self.holdout[1]

    def features_of(self, rows: np.ndarray) -> np.ndarray:
        """The raw features (float32) of test rows, by their positions in the table."""
        if self.streamed:
            return self.stream_split.scan.table.rows_at(rows).astype(np.float32)
        test = self.split.test
        position = {int(row): i for i, row in enumerate(test.rows)}
        return test.x[[position[int(row)] for row in rows]]
