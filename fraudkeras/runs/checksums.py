"""A run's model is trusted only while its bytes are the ones the run wrote.

Training records the sha256 of ``model.keras`` in ``checksums.json``; every
command that loads a run's model reads the file once into memory, checks those
bytes against the record and loads the checked bytes (never the path again), so
another run's model copied in, or a file changed on disk, is refused by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fraudkeras._core.errors import ModelFileError
from fraudkeras._core.files import read_json, write_json

log = logging.getLogger("fraudkeras")
CHECKSUMS_FILE = "checksums.json"


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sha256_path(path: Path) -> str:
    """Of a file, or of a folder's files (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    if not path.is_dir():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def record_checksums(folder: Path, *names: str) -> None:
    """Write ``checksums.json`` for the files ``names`` under ``folder``."""
    write_json(folder / CHECKSUMS_FILE, {name: sha256_path(folder / name) for name in names})


def mismatch(path: Path, found: str, recorded: str, where: Path) -> ModelFileError:
    """The one error for a model whose bytes are not the ones its run recorded."""
    return ModelFileError(
        f"{path}: checksum mismatch (sha256 {found[:12]}..., {where.name} records "
        f"{recorded[:12]}...): not the model its run wrote; refusing to use it"
    )


def read_verified(path: Path) -> bytes:
    """The bytes of ``path``, checked against ``checksums.json`` beside it. A run
    folder written before checksums were recorded is read with a warning."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror})") from error
    record_path = path.parent / CHECKSUMS_FILE
    if not record_path.is_file():
        log.warning("%s: no %s beside it; its checksum cannot be checked", path, CHECKSUMS_FILE)
        return content
    record: Any = read_json(record_path)
    recorded = record.get(path.name) if isinstance(record, dict) else None
    if not isinstance(recorded, str):
        raise ModelFileError(f"{path}: {record_path} records no checksum for {path.name}")
    found = sha256_bytes(content)
    if found != recorded:
        raise mismatch(path, found, recorded, record_path)
    return content


@contextlib.contextmanager
def verified_copy(path: Path) -> Iterator[Path]:
    """A private copy of ``path``'s checked bytes, for loaders that need a path:
    what is loaded is what was checked, whatever happens to ``path`` meanwhile."""
    content = read_verified(path)
    with tempfile.TemporaryDirectory(prefix="fraudkeras-model-") as scratch:
        copy = Path(scratch) / path.name
        copy.write_bytes(content)
        try:
            yield copy
        except ModelFileError as error:  # name the user's file, not the private copy
            raise ModelFileError(str(error).replace(str(copy), str(path))) from error
