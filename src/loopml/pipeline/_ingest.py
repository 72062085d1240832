"""Ingest: source chunks -> raw -> validation -> clean (append or upsert by key) + quarantine.

Every source kind is read by ``loopml.sources.read_chunks`` from the cursor the catalog holds;
each chunk is committed crash-safely (``_commit``) and its cursor stored only after its rows
are in the lake. Each start first finishes or undoes what a crash left pending (``_recover``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ConfigError
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import IngestResult
from loopml.pipeline._commit import TAG, begin, complete, fault, tables

if TYPE_CHECKING:
    from loopml.core.config import SourceConfig
    from loopml.core.records import Chunk
    from loopml.pipeline._context import Context


def ingest_source(
    ctx: Context,
    source: str | None = None,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    reporter: Reporter = SILENT,
    run_id: str | None = None,
    skip_busy: bool = False,
) -> list[IngestResult]:
    """Ingest what is new in one source (or in every source): one result per committed
    chunk, including the ones a crash left pending and this start finished (``recovered``).

    ``follow`` keeps reading a stream until ``stop`` is set; ``stop`` also ends a long ingest
    after the chunk being committed. Each source is ingested under its lock: a source another
    process is ingesting raises ``SourceBusyError``, or is left out with ``skip_busy``.
    """
    from loopml.core.errors import SourceBusyError

    if source is not None:
        sources = [ctx.config.source(source)]
    else:
        sources = list(ctx.config.sources)
        if follow and len(sources) > 1:
            raise ConfigError(
                "--follow reads one stream until stopped; this project has "
                f"{len(sources)} sources.",
                hint="Name the source: loopml ingest SOURCE --follow.",
            )
        undo_unconfigured(ctx)
    results: list[IngestResult] = []
    for src in sources:
        try:
            with ctx.catalog.ingest_lock(src.name):
                results.extend(recover_pending(ctx, src.name, run_id=run_id)[0])
                results.extend(_ingest_one(ctx, src, follow=follow, stop=stop,
                                           reporter=reporter, run_id=run_id))
        except SourceBusyError:
            if not skip_busy:
                raise
    return results


def undo_unconfigured(ctx: Context) -> None:
    """Give up the pending intents of sources no longer in loopml.yaml."""
    names = {s.name for s in ctx.config.sources}
    for intent in ctx.catalog.pending_ingests():
        if intent["source"] not in names:
            ctx.catalog.undo_ingest(intent["ingest_id"], reason=(
                f"source {intent['source']!r} is no longer configured"))


def recover_pending(ctx: Context, source: str | None = None, *, run_id: str | None = None
                    ) -> tuple[list[IngestResult], list[dict[str, Any]]]:
    """Finish or undo the ingests and replays a crash left pending (hold the source's
    ``ingest_lock``: an intent of a source another process holds is not a crash's)."""
    from loopml.pipeline._recover import recover

    return recover(ctx, source, run_id=run_id)


def _ingest_one(ctx: Context, src: SourceConfig, *, follow: bool,
                stop: threading.Event | None, reporter: Reporter,
                run_id: str | None) -> list[IngestResult]:
    from loopml.quality import check_cleaning
    from loopml.sources import read_chunks

    contract = ctx.contract(src.name)  # fail before reading when the source has no contract
    if src.cleaning is not None:  # and when its cleaning settings do not fit the contract
        check_cleaning(src.cleaning, contract)
    cursor = ctx.catalog.cursor(src.name)
    if cursor is None:
        cursor = _legacy_cursor(ctx, src)
    results: list[IngestResult] = []
    reporter.start("ingest", total=None)
    chunks = read_chunks(src, base_dir=ctx.root, cursor=cursor, follow=follow, stop=stop)
    try:
        for chunk in chunks:
            result = commit_chunk(ctx, src, chunk, cursor=cursor, run_id=run_id)
            cursor = chunk.cursor
            if result is not None:
                results.append(result)
                r = result.report
                reporter.advance("ingest", note=f"{src.name}: {r.rows_in:,} rows in, "
                                 f"{r.rows_quarantined:,} quarantined")
            if stop is not None and stop.is_set() and not follow:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    total = sum(r.report.rows_accepted for r in results)
    reporter.finish("ingest", note=f"{src.name}: {total:,} accepted")
    return results


def commit_chunk(ctx: Context, src: SourceConfig, chunk: Chunk, *,
                 cursor: dict[str, Any] | None, run_id: str | None = None
                 ) -> IngestResult | None:
    """Commit one chunk crash-safely and store its cursor; None for a chunk with no rows
    (only its cursor is stored)."""
    empty = chunk.frame.height == 0 and (chunk.rejected is None or chunk.rejected.height == 0)
    if empty:
        if chunk.cursor != cursor:
            ctx.catalog.store_cursor(src.name, chunk.cursor, ingest_id="-")
        result = None
    else:
        ingest_id, raw_version, early = begin(ctx, src, chunk, cursor=cursor, run_id=run_id)
        intent = next(i for i in ctx.catalog.pending_ingests(src.name)
                      if i["ingest_id"] == ingest_id)
        result = complete(ctx, src, intent, raw_version=raw_version, fresh=True, run_id=run_id,
                          early=early)
    fault("after_finish")
    if chunk.on_commit is not None:
        chunk.on_commit()
    return result


def _legacy_cursor(ctx: Context, src: SourceConfig) -> dict[str, Any] | None:
    """A file source's cursor from the raw commits of an older loopml (``loopml.files``), so
    a lake written before cursors is not ingested twice."""
    import json

    raw = tables(src.name)["raw"]
    if src.kind != "file" or not ctx.lake.exists(raw):
        return None
    files: dict[str, str] = {}
    for commit in reversed(ctx.lake.history(raw)):
        if "loopml.files" in commit and TAG in commit:
            files.update(json.loads(commit["loopml.files"]))
    if not files:
        return None
    cursor = {"files": files}
    ctx.catalog.store_cursor(src.name, cursor, ingest_id="legacy")
    return cursor

