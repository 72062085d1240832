"""Time travel: which version of a table was current at a given time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loopml.core.errors import LakeError, first_line


def commit_at(dt: Any, table: str, as_of: datetime | str) -> int:
    """The version of the open table ``dt`` (named ``table`` in messages) at time ``as_of``:
    the newest commit at or before it."""
    when = _as_datetime(as_of)
    # the commits' own timestamps (what 'history' shows), not the log files' modification
    # times that load_as_version goes by: an object store keeps those to the second only
    stamps = {int(c["version"]): c["timestamp"] for c in dt.history()
              if "version" in c and "timestamp" in c}
    if not stamps:
        try:
            dt.load_as_version(when)
        except Exception as exc:  # delta-rs raises several types for the same cause
            raise LakeError(
                f"Cannot find {table} as of {when.isoformat()}: {first_line(exc)}",
                hint="Give a time after the table's first commit.") from exc
        return int(dt.version())
    millis = when.timestamp() * 1000
    before = [v for v, stamp in stamps.items() if stamp <= millis]
    if not before:
        first = min(stamps)
        first_time = datetime.fromtimestamp(stamps[first] / 1000, tz=UTC)
        raise LakeError(
            f"Table {table} did not exist yet at {when.isoformat()}: its first version "
            f"({first}) is from {first_time.isoformat()}.",
            hint="Give a later time, or a version number ('loopml lake history').",
        )
    return max(before)

def _as_datetime(value: datetime | str) -> datetime:
    """A timezone-aware datetime from a datetime or ISO text; without an offset, UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise LakeError(
                f"{value!r} is not a time.",
                hint="Write an ISO time such as 2026-01-31T12:00:00 or 2026-01-31T12:00+01:00 "
                "(UTC when no offset is given), or a version number.",
            ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
