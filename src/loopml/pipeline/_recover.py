"""Finishing or undoing the ingests and replays a crash left pending.

An ingest whose raw commit is missing wrote nothing: it is undone, its cursor was never
stored, so the source is read again from where it was. Any other pending ingest or replay is
completed from what it recorded (its raw rows or the quarantine version, its contract and the
clean version), skipping the tables that already hold its commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.pipeline._commit import complete, raw_commit, tables

if TYPE_CHECKING:
    from loopml.core.records import IngestResult
    from loopml.pipeline._context import Context


def recover(ctx: Context, source: str, *, run_id: str | None = None
            ) -> tuple[list[IngestResult], list[dict]]:
    """Resolve every pending intent of ``source`` (whose ingest lock the caller holds): the
    ingests completed now, and the replays completed now (as their counts)."""
    from loopml.pipeline._replay import complete_replay

    done: list[IngestResult] = []
    replays: list[dict] = []
    for intent in ctx.catalog.pending_ingests(source):
        name = intent["source"]
        src = ctx.config.source(name)
        if intent["kind"] == "replay":
            replays.append(complete_replay(ctx, src, intent, fresh=False))
            continue
        version = raw_commit(ctx.lake, tables(name)["raw"], intent["ingest_id"],
                             intent["versions"].get("raw"))
        if version is None:
            ctx.catalog.undo_ingest(intent["ingest_id"],
                                    reason="stopped before its rows reached the raw table")
            continue
        done.append(complete(ctx, src, intent, raw_version=version, fresh=False, run_id=run_id))
    return done, replays
