"""A streamed table's decoded training rows kept on disk while a run trains
(``train(stream_cache=True)``, ``fraudkeras train --stream-cache``)."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fraudkeras._core.files import write_json
from fraudkeras.data.streaming import StreamSplit
from fraudkeras.runs import checkpoint
from fraudkeras.training.output import Output

log = logging.getLogger("fraudkeras")


@contextlib.contextmanager
def stream_cache(streamed: StreamSplit | None, output: Output, fresh: bool) -> Iterator[None]:
    """With ``output.stream_cache``, a folder for a streamed table's decoded
    training rows while it trains: ``OUT.stream-cache/`` beside the checkpoint,
    or a temporary folder without ``out``. It is removed when training ends or
    fails for good, kept while a checkpoint remains to resume (and then only
    reused for the same table, split and chunks: its ``manifest.json``), and
    never inherited by a new run (``fresh``). Processes of a group other than the
    first read Parquet every epoch (they write no file)."""
    folder = None if output.out is None else output.out.with_name(output.out.name + ".stream-cache")
    if folder is not None and fresh and output.primary:
        shutil.rmtree(folder, ignore_errors=True)
    if streamed is None and output.stream_cache:
        log.info("stream cache: the table is in memory, nothing to cache")
    if streamed is None or not output.stream_cache or not output.primary:
        yield
        return
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="fraudkeras-stream-") as temporary:
            streamed.cache = Path(temporary)
            try:
                yield
            finally:
                streamed.cache = None
        return
    found = streamed.scan
    manifest = {
        "fingerprint": found.fingerprint,
        "split": [
            found.assignment.kind,
            found.assignment.seed,
            [repr(c) for c in found.assignment.cuts],
        ],
        "chunks": [[str(c.path), c.offset, c.rows] for c in found.table.chunks],
    }
    kept = folder / "manifest.json"
    if kept.is_file() and json.loads(kept.read_text()) != manifest:
        shutil.rmtree(folder, ignore_errors=True)  # another table's, or another split's
    folder.mkdir(parents=True, exist_ok=True)
    write_json(kept, manifest)
    streamed.cache = folder
    try:
        yield
    except BaseException:
        if output.out is not None and not checkpoint.checkpoint_dir(output.out).is_dir():
            shutil.rmtree(folder, ignore_errors=True)  # nothing left to resume
        raise
    finally:
        streamed.cache = None
    shutil.rmtree(folder, ignore_errors=True)
