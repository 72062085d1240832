"""Per-source cursors and ingest intents: the catalog half of a crash-safe ingest.

Delta has no transaction across tables, so an ingest first records its intent here
(``begin_ingest``), then writes the lake tables, each commit tagged with the ingest's id, and
finally marks the intent done, stores the source's new cursor, the ingest's counts and an event
in ONE catalog transaction (``finish_ingest``). A restart finds the intents still pending and
finishes or undoes each of them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from loopml.core.errors import RegistryError
from loopml.registry import _rows
from loopml.registry._db import jsonable
from loopml.registry._tables import IngestIntentRow, IngestRow, SourceCursorRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from loopml.core.records import IngestResult

INTENT_KINDS = ("ingest", "replay")


class IngestLog:
    """The cursor and intent methods of ``Catalog`` (mixed in; uses its ``_session``)."""

    url: Any
    _engine: Any

    def _session(self, action: str, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError  # pragma: no cover - Catalog provides it

    @contextmanager
    def ingest_lock(self, source: str) -> Iterator[None]:
        """Hold ``source``'s ingest lock, or raise ``SourceBusyError`` at once if another
        process holds it. A pending intent of a source whose lock is free was left by a
        crash; one whose lock is held is still being written. The lock goes with its process
        (a PostgreSQL session lock, or ``flock`` on a file beside the SQLite catalog)."""
        backend = self.url.get_backend_name()
        if backend == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"ingest:{source}".encode()).digest()[:8],
                                 "big", signed=True)
            with self._engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                if not got.scalar():
                    raise _busy(source)
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return
        database = self.url.database if backend == "sqlite" else None
        if not database or database == ":memory:":
            yield  # one process only
            return
        import fcntl

        name = hashlib.sha256(source.encode()).hexdigest()[:16]
        path = Path(f"{database}.ingest-{name}.lock")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _busy(source) from None
            yield
        finally:
            os.close(fd)  # releases the lock

    def cursor(self, source: str) -> dict[str, Any] | None:
        """The cursor of ``source``'s last committed chunk, or None before its first ingest."""
        with self._session("Reading a source cursor") as s:
            row = s.get(SourceCursorRow, source)
            return None if row is None else dict(row.cursor)

    def cursors(self) -> dict[str, dict[str, Any]]:
        """Every stored cursor by source, with ``ingest_id`` and ``updated_at``."""
        with self._session("Reading source cursors") as s:
            return {
                r.source: {"cursor": r.cursor, "ingest_id": r.ingest_id, "updated_at": r.updated_at}
                for r in s.scalars(sa.select(SourceCursorRow))
            }

    def store_cursor(self, source: str, cursor: dict[str, Any], *, ingest_id: str) -> None:
        """Set a source's cursor outside an ingest (e.g. taken over from an older lake)."""
        with self._session("Storing a source cursor", write=True) as s:
            _put_cursor(s, source, cursor, ingest_id)

    def begin_ingest(
        self,
        source: str,
        *,
        kind: str = "ingest",
        cursor_before: dict[str, Any] | None,
        cursor_after: dict[str, Any] | None,
        versions: dict[str, int | None],
        contract_fingerprint: str,
        details: dict[str, Any] | None = None,
    ) -> str:
        """Record a pending intent and return its id (32 hex digits). ``versions`` are the
        lake tables' versions before this ingest writes (None: no table yet)."""
        if kind not in INTENT_KINDS:
            raise RegistryError(f"Unknown intent kind {kind!r}; use one of {INTENT_KINDS}.")
        ingest_id = uuid.uuid4().hex
        with self._session("Recording an ingest intent", write=True) as s:
            s.add(
                IngestIntentRow(
                    id=ingest_id,
                    source=source,
                    kind=kind,
                    status="pending",
                    cursor_before=jsonable(cursor_before),
                    cursor_after=jsonable(cursor_after),
                    versions=jsonable(versions),
                    contract_fingerprint=contract_fingerprint,
                    details=jsonable(details or {}),
                    counts=None,
                    started_at=_rows.now(),
                    finished_at=None,
                )
            )
        return ingest_id

    def pending_ingests(self, source: str | None = None) -> list[dict[str, Any]]:
        """Intents not finished nor undone, oldest first."""
        return self.intents(source=source, status="pending", limit=1000, oldest_first=True)

    def intents(
        self,
        *,
        source: str | None = None,
        status: str | None = None,
        limit: int = 50,
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Intents as plain dicts (newest first unless ``oldest_first``)."""
        started = IngestIntentRow.started_at
        order = started.asc() if oldest_first else started.desc()
        query = sa.select(IngestIntentRow).order_by(order, IngestIntentRow.id)
        if source is not None:
            query = query.where(IngestIntentRow.source == source)
        if status is not None:
            query = query.where(IngestIntentRow.status == status)
        with self._session("Listing ingest intents") as s:
            return [_intent_dict(r) for r in s.scalars(query.limit(_rows.limit(limit)))]

    def finish_ingest(
        self,
        ingest_id: str,
        *,
        counts: dict[str, Any],
        result: IngestResult | None = None,
        run_id: str | None = None,
        event: str | None = None,
    ) -> None:
        """In one transaction: the intent is done with its ``counts``, the source's cursor
        becomes the intent's ``cursor_after`` (ingests), the ingest's record is written
        (``result``) and an event of kind ``event`` (default: the intent's kind) is logged."""
        with self._session("Finishing an ingest", write=True) as s:
            row = _pending(s, ingest_id)
            row.status, row.finished_at, row.counts = "done", _rows.now(), jsonable(counts)
            if row.kind == "ingest" and row.cursor_after is not None:
                _put_cursor(s, row.source, row.cursor_after, ingest_id)
            if result is not None:
                run = None if run_id is None else _rows.run_row(s, run_id).id
                ingest = s.get(IngestRow, ingest_id) or IngestRow(id=ingest_id)
                s.add(_rows.fill_ingest(ingest, result, run))
            payload = {"ingest_id": ingest_id, **counts}
            s.add(_rows.event_row(event or row.kind, row.source, payload))

    def undo_ingest(self, ingest_id: str, *, reason: str) -> None:
        """Give up a pending intent that wrote nothing: its cursor is not stored, so the
        source is read again from where it was."""
        with self._session("Undoing an ingest", write=True) as s:
            row = _pending(s, ingest_id)
            row.status, row.finished_at = "undone", _rows.now()
            row.counts = {"reason": reason}
            payload = {"ingest_id": ingest_id, "kind": row.kind, "reason": reason}
            s.add(_rows.event_row("ingest_undone", row.source, payload))


def _busy(source: str) -> RegistryError:
    from loopml.core.errors import SourceBusyError

    return SourceBusyError(
        f"Source {source!r} is being ingested by another process right now.",
        hint="Wait for it to finish (or stop it), then run the command again.",
    )


def _pending(s: Session, ingest_id: str) -> IngestIntentRow:
    row = s.get(IngestIntentRow, ingest_id, with_for_update=True)
    if row is None:
        raise RegistryError(f"No ingest intent {ingest_id!r} in the catalog.")
    if row.status != "pending":
        raise RegistryError(
            f"Ingest {ingest_id} is already {row.status}; it cannot be finished twice.",
            hint="Another process may have recovered it; run 'loopml ingest' again.",
        )
    return row


def _put_cursor(s: Session, source: str, cursor: dict[str, Any], ingest_id: str) -> None:
    row = s.get(SourceCursorRow, source)
    if row is None:
        s.add(SourceCursorRow(source=source, cursor=jsonable(cursor), ingest_id=ingest_id,
                              updated_at=_rows.now()))
    else:
        row.cursor, row.ingest_id, row.updated_at = jsonable(cursor), ingest_id, _rows.now()


def _intent_dict(row: IngestIntentRow) -> dict[str, Any]:
    return {
        "ingest_id": row.id,
        "source": row.source,
        "kind": row.kind,
        "status": row.status,
        "cursor_before": row.cursor_before,
        "cursor_after": row.cursor_after,
        "versions": dict(row.versions),
        "contract_fingerprint": row.contract_fingerprint,
        "details": dict(row.details),
        "counts": row.counts,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }
