"""Compaction and vacuum of one Delta table under a retention policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loopml.core.errors import LakeError, first_line


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimizeResult:
    """What ``Lake.optimize`` did to one table.

    Compaction rewrote ``files_removed`` small files (``bytes_removed``) into ``files_added``
    (``bytes_added``) as one new version; vacuum then deleted ``files_vacuumed`` files
    (``bytes_vacuumed``) that no version younger than ``retention_hours`` needs.
    """

    table: str
    version_before: int
    version: int
    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int
    files_vacuumed: int
    bytes_vacuumed: int
    retention_hours: int


def optimize(dt: Any, table: str, *, retention_hours: int,
             metadata: dict[str, str] | None = None) -> OptimizeResult:
    """Compact ``dt`` (a ``DeltaTable``), then vacuum files older than ``retention_hours``.

    The retention is the project's policy (``storage.retention_hours``), so Delta's own
    7-day minimum is not enforced on top of it: a shorter retention is allowed on purpose,
    and time travel to versions older than it may then fail.
    """
    from deltalake import CommitProperties

    if retention_hours < 0:
        raise LakeError(f"Retention must be zero or more hours, not {retention_hours}.")
    before = dt.version()
    props = CommitProperties(custom_metadata=dict(metadata or {}))
    try:
        compacted = dt.optimize.compact(commit_properties=props)
        vacuumed = dt.vacuum(retention_hours=retention_hours, dry_run=False,
                             enforce_retention_duration=False, commit_properties=props)
    except Exception as exc:  # delta-rs raises several types for the same cause
        raise LakeError(f"Optimizing {table} failed: {first_line(exc)}") from exc
    dt.update_incremental()
    removed = _sizes(compacted.get("filesRemoved"))
    added = _sizes(compacted.get("filesAdded"))
    return OptimizeResult(
        table=table,
        version_before=before,
        version=dt.version(),
        files_removed=int(compacted.get("numFilesRemoved", 0)),
        files_added=int(compacted.get("numFilesAdded", 0)),
        bytes_removed=removed,
        bytes_added=added,
        files_vacuumed=len(vacuumed),
        bytes_vacuumed=_vacuumed_bytes(dt) if vacuumed else 0,
        retention_hours=retention_hours,
    )


def _sizes(stats: Any) -> int:
    if isinstance(stats, str):
        stats = json.loads(stats)
    return int((stats or {}).get("totalSize", 0))


def _vacuumed_bytes(dt: Any) -> int:
    """The size vacuum deleted, from its ``VACUUM START`` commit (the newest one)."""
    for commit in dt.history(3):
        if commit.get("operation") == "VACUUM START":
            return int((commit.get("operationMetrics") or {}).get("sizeOfDataToDelete", 0))
    return 0
