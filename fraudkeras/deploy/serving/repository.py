"""The model a server answers with, and hot swaps between versions.

``MODEL`` is one model (served as version 1) or a TensorFlow-Serving-style
repository: numbered sub-folders ``MODEL/1/``, ``MODEL/2/``... (a version folder
holds whatever :func:`~fraudkeras.deploy.serving.loading.locate` accepts). The
highest version that loads and passes its checks serves (at start-up, broken
newer versions are logged and skipped). A watcher thread polls the folder; when
the highest version changes (a new one, or the newest removed), it loads and
verifies that version off the request path and then replaces one reference.
Requests read the reference once, so none is dropped or sees half a swap. A
version that fails to load is logged and remembered by its files' sizes and
times (a copy still in progress is retried once it changes); the old version
keeps serving. Each poll also re-checks the served model (its file's sha256 and
its probe, :func:`~fraudkeras.deploy.serving.loading.recheck`), a single model
too: ``healthy`` (readiness) is false while the check fails, and true again once
it passes (the file put back) or a valid newer version is swapped in. Requests
are still answered, by the verified model in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from fraudkeras._core.errors import FraudKerasError, ModelFileError
from fraudkeras.deploy.serving.loading import ServedModel, load_version, recheck
from fraudkeras.deploy.serving.settings import DEFAULT_ARTIFACT, POLL_SECONDS

log = logging.getLogger("fraudkeras")
Signature = tuple[tuple[str, int, int], ...]


def versions(folder: Path) -> dict[int, Path]:
    """Numbered version folders (or files) directly under ``folder``."""
    found = {}
    for child in folder.iterdir():
        if child.name.isdigit() and not child.name.startswith("."):
            found[int(child.name)] = child
    return found


def is_repository(path: Path) -> bool:
    return path.is_dir() and bool(versions(path))


def signature(path: Path) -> Signature:
    """What a version's files look like now: a change means it is worth retrying."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:  # removed while we looked
            continue
        stats.append((str(file.relative_to(path)) if path.is_dir() else "", stat.st_size,
                      stat.st_mtime_ns))  # fmt: skip
    return tuple(stats)


class ModelRepository:
    """Holds the served version and swaps it; ``current`` is read by every request."""

    def __init__(
        self,
        name: str,
        source: Path,
        *,
        artifact: str = DEFAULT_ARTIFACT,
        threshold: float | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.name, self.source = name, source
        self.artifact, self.threshold, self.poll_seconds = artifact, threshold, poll_seconds
        self.versioned = is_repository(source)
        self.listeners: list[Callable[[str, ServedModel | None], None]] = []
        self._failed: dict[int, Signature] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.healthy = True
        self.current = self._load_initial()

    def _load_initial(self) -> ServedModel:
        """The newest version that loads; if none does, the newest one's error ends
        the command with its exit code."""
        if not self.versioned:
            return load_version(self.source, 1, self.artifact, self.threshold)
        found = versions(self.source)
        first_error: Exception | None = None
        for number in sorted(found, reverse=True):
            try:
                return load_version(found[number], number, self.artifact, self.threshold)
            except (FraudKerasError, OSError) as error:
                first_error = first_error or error
                self._failed[number] = signature(found[number])
                log.error("model %s version %d not loaded (%s); trying older versions",
                          self.name, number, error)  # fmt: skip
        assert first_error is not None
        raise first_error

    def start(self) -> None:
        """Re-check the served model and watch for new versions every ``poll_seconds``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="model-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # the watcher must outlive anything a folder can do
                log.exception("model repository %s: poll failed", self.source)

    def check_current(self) -> bool:
        """Re-check the served model; readiness follows the answer (logged when it changes)."""
        current = self.current
        try:
            recheck(current)
        except FraudKerasError as error:
            if self.healthy:
                log.error("model %s version %d fails its check (%s): not ready; still "
                          "answering with the verified copy in memory",
                          self.name, current.version, error)  # fmt: skip
            self.healthy = False
        else:
            if not self.healthy:
                log.info("model %s version %d passes its check again: ready",
                         self.name, current.version)  # fmt: skip
            self.healthy = True
        return self.healthy

    def poll(self) -> bool:
        """Re-check the served model, then swap to the highest version if it changed
        and loads; True if swapped."""
        self.check_current()
        if not self.versioned:
            return False
        try:
            found = versions(self.source)
        except OSError as error:
            log.error("model repository %s unreadable (%s); still serving version %d",
                      self.source, error, self.current.version)  # fmt: skip
            return False
        if not found:
            return False
        newest = max(found)
        if newest == self.current.version:
            return False
        seen = signature(found[newest])
        if self._failed.get(newest) == seen:
            return False
        try:
            loaded = load_version(found[newest], newest, self.artifact, self.threshold)
        except (FraudKerasError, OSError) as error:
            self._failed[newest] = seen
            log.error("model %s version %d not loaded (%s); still serving version %d",
                      self.name, newest, error, self.current.version)  # fmt: skip
            self._notify("failed", None)
            return False
        previous, self.current = self.current, loaded  # one reference: atomic for readers
        log.info("model %s: now serving version %d (was %d)",
                 self.name, loaded.version, previous.version)  # fmt: skip
        self._notify("loaded", loaded)
        self.check_current()  # readiness follows the new version at once
        return True

    def _notify(self, event: str, model: ServedModel | None) -> None:
        for listener in self.listeners:
            listener(event, model)


def open_repository(
    name: str, source: Path, *, artifact: str, threshold: float | None, poll_seconds: float
) -> ModelRepository:
    """A repository serving ``source``; raises ModelFileError if nothing can serve."""
    if not source.exists():
        raise ModelFileError(f"{source}: no such model file or folder")
    return ModelRepository(
        name, source, artifact=artifact, threshold=threshold, poll_seconds=poll_seconds
    )
