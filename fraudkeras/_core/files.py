"""Files and folders written into a temporary sibling and renamed only when
complete, so a crash or Ctrl-C never leaves an output that looks finished."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import FraudKerasError, ModelFileError, OutputError, first_line


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a scratch path beside ``target``; on success it replaces ``target``,
    so a crash never leaves half a file. The scratch file goes in every case."""
    target = Path(target)
    with write_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(handle)
    scratch = Path(name)
    try:
        with write_errors(target):
            yield scratch
            _default_mode(scratch, 0o666)
            os.replace(scratch, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()


@contextlib.contextmanager
def write_errors(target: Path) -> Iterator[None]:
    """An operating-system error while writing ``target`` (a full disk, a read-only
    folder) as an :class:`OutputError` naming it: the input is not to blame."""
    try:
        yield
    except OSError as error:
        if isinstance(error, FraudKerasError | InterruptedError):  # ours, or a signal's
            raise
        raise OutputError(f"{target}: cannot write ({first_line(error)})") from error


def _default_mode(path: Path, full: int) -> None:
    """Give a temporary file or folder (created private, 0600/0700) the permissions
    an ordinary ``open`` or ``mkdir`` would have given it under the user's umask."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(full & ~umask)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (see :func:`atomic_file`). NaN and infinity are refused:
    they are not JSON, and other tools reading our files would choke on them."""
    try:
        text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as error:
        raise OutputError(f"{path}: cannot write a non-finite number as JSON ({error})") from error
    with atomic_file(path) as scratch:
        scratch.write_text(text + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ModelFileError(f"{path}: missing") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: not valid JSON ({error})") from error


def check_output_dir(target: Path, *, force: bool) -> None:
    """Refuse to replace an existing folder unless ``force``; check the parent is writable."""
    if target.exists() and not force:
        raise OutputError(f"{target}: exists already (force=True replaces it)")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder")
    parent = target.parent if str(target.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: not writable")


def check_output_file(
    target: Path, *, force: bool, inputs: tuple[Path, ...] = (), folder: bool = False
) -> None:
    """Refuse an output that exists (unless ``force``), has no writable parent
    folder, or would overwrite one of ``inputs``; a file output may not be a
    folder (``folder=True``: the output is one, such as Spark's part files)."""
    resolved = target.resolve()
    if any(resolved == path.resolve() for path in inputs):
        raise OutputError(f"{target}: would overwrite the input")
    if target.is_dir() and not folder:
        raise OutputError(f"{target}: is a folder")
    if target.exists() and not force:
        raise OutputError(f"{target}: exists already (force=True replaces it)")
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent}: no such folder")
    if not os.access(target.parent, os.W_OK):
        raise OutputError(f"{target.parent}: not writable")


@contextlib.contextmanager
def atomic_dir(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a scratch folder beside ``target``; on success it replaces ``target``.

    On any exception (KeyboardInterrupt included) the scratch folder is removed
    and ``target`` is left as it was.
    """
    target = Path(target)
    check_output_dir(target, force=force)
    with write_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_scratch(target)
        prefix = f".{target.name}.partial-{os.getpid()}-"
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))
    try:
        with write_errors(target):
            yield scratch
            _default_mode(scratch, 0o777)
            if target.exists():
                retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
                os.replace(target, retired / target.name)
                os.replace(scratch, target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


#: a scratch folder of a process that left no pid in its name (older versions) is
#: abandoned once it has not changed for this long
ABANDONED_AFTER_S = 24 * 3600


def remove_abandoned_scratch(target: Path) -> None:
    """Remove ``target``'s scratch siblings whose process is gone: a killed
    :func:`atomic_dir` (SIGKILL allows no clean-up) leaves its ``.partial-PID-*``
    folder behind. A live process's scratch (its pid still running here) is kept."""
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        owner = stale.name.removeprefix(f".{target.name}.partial-").split("-")[0]
        if owner.isdigit():
            if _running(int(owner)):
                continue
        else:
            try:
                if time.time() - stale.stat().st_mtime < ABANDONED_AFTER_S:
                    continue
            except OSError:
                continue
        shutil.rmtree(stale, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_scratch(target: Path) -> None:
    """Remove the scratch siblings a killed :func:`atomic_dir` for ``target`` left
    behind (SIGKILL allows no clean-up). Only for a target this process owns."""
    target = Path(target)
    for pattern in (f".{target.name}.partial-*", f".{target.name}.old-*"):
        for stale in target.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)
