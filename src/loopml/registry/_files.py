"""Artifact files: copy them into the store, hash them, and check them before any load.

The store is a local folder: ``models/<name>/<version>/`` for model versions and
``runs/<run id>/<name>`` for a run's artifacts. The catalog keeps each file's sha256 and size.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

from loopml.core.errors import IntegrityError, RegistryError


def sha256(path: Path) -> str:
    """The hex sha256 of a file (read in chunks by hashlib)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``folder`` as posix relative path -> (sha256, size)."""
    return {
        p.relative_to(folder).as_posix(): (sha256(p), p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stage_folder(source: Path, parent: Path) -> Path:
    """Copy ``source`` into a fresh hidden folder under ``parent`` and return it."""
    if not source.is_dir():
        raise RegistryError(
            f"Cannot register {source}: it is not a folder.",
            hint="Pass the folder the model bundle was saved to.",
        )
    if not any(p.is_file() for p in source.rglob("*")):
        raise RegistryError(
            f"Cannot register {source}: the folder holds no files.",
            hint="Save the model bundle into the folder first.",
        )
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".incoming-{uuid.uuid4().hex}"
    shutil.copytree(source, staging)
    return staging


def place(staging: Path, final: Path) -> None:
    """Move a staged folder to its final place. A folder already there was left by a process
    that stopped before recording it (the caller holds the version), so it is replaced."""
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)


def verify(folder: Path, expected: dict[str, tuple[str, int]], *, what: str) -> None:
    """Raise ``IntegrityError`` unless ``folder`` holds exactly the expected files, unchanged."""
    hint = (
        f"The stored copy of {what} was changed after it was registered. Restore the folder "
        "from a backup, or register the model again."
    )
    if not folder.is_dir():
        raise _failed(f"The folder of {what} is missing: {folder}.", hint, ".", None, None)
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    missing = sorted(set(expected) - found)
    if missing:
        name, digest = missing[0], expected[missing[0]][0]
        raise _failed(
            f"File {name!r} of {what} is missing from {folder} (expected sha256 {digest}).",
            hint,
            name,
            digest,
            None,
        )
    added = sorted(found - set(expected))
    if added:
        name, actual = added[0], sha256(folder / added[0])
        raise _failed(
            f"File {name!r} in {folder} is not part of {what} (found sha256 {actual}); "
            "it was added after registration.",
            hint,
            name,
            None,
            actual,
        )
    for name, (digest, size) in sorted(expected.items()):
        path = folder / name
        actual = sha256(path)
        if actual != digest:
            raise _failed(
                f"File {name!r} of {what} has sha256 {actual} but {digest} was recorded "
                f"({path.stat().st_size} bytes found, {size} recorded).",
                hint,
                name,
                digest,
                actual,
            )


def verify_file(path: Path, digest: str, *, what: str) -> None:
    """Raise ``IntegrityError`` unless ``path`` exists with sha256 ``digest``."""
    hint = f"The stored copy of {what} was changed or removed; log it again."
    if not path.is_file():
        raise _failed(f"The file of {what} is missing: {path}.", hint, path.name, digest, None)
    actual = sha256(path)
    if actual != digest:
        raise _failed(
            f"File {path.name!r} of {what} has sha256 {actual} but {digest} was recorded.",
            hint,
            path.name,
            digest,
            actual,
        )


def _failed(
    message: str, hint: str, file: str, expected: str | None, found: str | None
) -> IntegrityError:
    """An ``IntegrityError`` that also carries ``file``, ``expected`` and ``found`` (hashes;
    None where the file is missing or was not expected), for callers that report them."""
    error = IntegrityError(message, hint=hint)
    error.file, error.expected, error.found = file, expected, found  # type: ignore[attr-defined]
    return error
