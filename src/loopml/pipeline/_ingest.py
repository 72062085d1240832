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
) -> list[IngestResult]:
    """Ingest what is new in one source (or in every source): one result per committed
    chunk, including the ones a crash left pending and this start finished (``recovered``).

    ``follow`` keeps reading a stream until ``stop`` is set; ``stop`` also ends a long ingest
    after the chunk being committed.
    """
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
    results, _ = recover_pending(ctx, source, run_id=run_id)
    for src in sources:
        results.extend(_ingest_one(ctx, src, follow=follow, stop=stop, reporter=reporter,
                                   run_id=run_id))
    return results


def recover_pending(ctx: Context, source: str | None = None, *, run_id: str | None = None
                    ) -> tuple[list[IngestResult], list[dict[str, Any]]]:
    """Finish or undo the ingests and replays a crash left pending."""
    from loopml.pipeline._recover import recover

    return recover(ctx, source, run_id=run_id)


def _ingest_one(ctx: Context, src: SourceConfig, *, follow: bool,
                stop: threading.Event | None, reporter: Reporter,
                run_id: str | None) -> list[IngestResult]:
    from loopml.sources import read_chunks

    ctx.contract(src.name)  # fail before reading when the source has no contract
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
        ingest_id, raw_version = begin(ctx, src, chunk, cursor=cursor, run_id=run_id)
        intent = next(i for i in ctx.catalog.pending_ingests(src.name)
                      if i["ingest_id"] == ingest_id)
        result = complete(ctx, src, intent, raw_version=raw_version, fresh=True, run_id=run_id)
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


def summarize(results: list[IngestResult]) -> list[dict[str, Any]]:
    """Per source: chunks, rows in, accepted, quarantined, duplicates, replaced, rejected."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        row = out.setdefault(r.source, {
            "source": r.source, "chunks": 0, "rows_in": 0, "accepted": 0, "quarantined": 0,
            "duplicates": 0, "replaced": 0, "rejected": 0, "recovered": 0,
            "clean_version": None, "quarantine_version": None,
        })
        row["chunks"] += 1
        row["rows_in"] += r.report.rows_in
        row["accepted"] += r.report.rows_accepted
        row["quarantined"] += r.report.rows_quarantined
        row["duplicates"] += r.report.duplicates
        row["replaced"] += r.replaced
        row["rejected"] += r.rejected
        row["recovered"] += int(r.recovered)
        row["clean_version"] = r.clean.version
        if r.quarantine is not None:
            row["quarantine_version"] = r.quarantine.version
    return list(out.values())
