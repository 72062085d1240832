"""Quarantine you can act on: list it, show it, and replay it after the contract is fixed.

A replay re-validates the quarantined rows against the current contract (and against the
clean table, for duplicates): those that now pass move to clean, the rest stay with their new
reasons. It is crash-safe like an ingest: an intent records the quarantine and clean versions
and the contract; the clean append and the quarantine rewrite are tagged with its id, and a
restart completes the step that is missing from the same versions.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from loopml.core.config import SourceConfig
from loopml.core.contract import Contract
from loopml.core.records import quality_score
from loopml.pipeline._commit import (
    TAG,
    as_recorded,
    fault,
    route_against,
    routing_of,
    tables,
    tagged,
    undo_on_error,
    write_clean,
)
from loopml.pipeline._route import RAW_TEXT, ROW_HASH
from loopml.quality import REASONS

if TYPE_CHECKING:
    import polars as pl

    from loopml.pipeline._context import Context


def replay(ctx: Context, source: str) -> dict[str, Any]:
    """Re-validate ``source``'s quarantined rows; returns the counts (also an event)."""
    from loopml.pipeline._ingest import recover_pending

    src = ctx.config.source(source)
    with ctx.catalog.ingest_lock(src.name):
        recover_pending(ctx, src.name)
        names = tables(src.name)
        contract = ctx.contract(src.name)
        versions = {zone: ctx.lake.version(names[zone]) for zone in ("clean", "quarantine")}
        if versions["quarantine"] is None:
            return {"source": src.name, "rows_in": 0, "moved": 0, "still_quarantined": 0,
                    "duplicates": 0, "replaced": 0, "ingest_id": None}
        ingest_id = ctx.catalog.begin_ingest(
            src.name, kind="replay", cursor_before=None, cursor_after=None, versions=versions,
            contract_fingerprint=contract.fingerprint(),
            details={"contract": contract.to_dict(), "routing": routing_of(src)},
        )
        intent = next(i for i in ctx.catalog.pending_ingests(src.name)
                      if i["ingest_id"] == ingest_id)
        return complete_replay(ctx, src, intent, fresh=True)


def complete_replay(ctx: Context, src: SourceConfig, intent: dict[str, Any], *,
                    fresh: bool) -> dict[str, Any]:
    import polars as pl

    ingest_id, versions = intent["ingest_id"], intent["versions"]
    contract = Contract.from_dict(intent["details"]["contract"])
    src = as_recorded(src, intent)
    names = tables(src.name)
    held = ctx.lake.read(names["quarantine"], version=versions["quarantine"])
    unreadable = pl.col(RAW_TEXT).is_not_null() if RAW_TEXT in held.columns else pl.lit(False)
    kept = held.filter(unreadable)  # rows the reader could not parse stay as they are
    rows = held.filter(~unreadable).drop([REASONS, RAW_TEXT, ROW_HASH], strict=False)
    with undo_on_error(ctx, intent, ("clean", "quarantine")):
        routed = route_against(ctx.lake, names["clean"], versions.get("clean"), rows, contract,
                               rejected=None, src=src)
    moved = routed.clean.height
    meta = {TAG: ingest_id, "loopml.replayed": str(held.height), "loopml.moved": str(moved)}
    if moved:
        write_clean(ctx.lake, src, names["clean"], routed.clean, meta,
                    skip=not fresh and tagged(ctx.lake, names["clean"], ingest_id,
                                              versions.get("clean")))
    fault("after_clean")
    parts = [p for p in (routed.quarantine, kept) if p.height]
    remaining = pl.concat(parts, how="diagonal_relaxed") if parts else held.clear()
    changed = moved or routed.superseded or not _same_reasons(held, remaining)
    if changed and (fresh or not tagged(ctx.lake, names["quarantine"], ingest_id,
                                        versions["quarantine"])):
        ctx.lake.overwrite(names["quarantine"], remaining, metadata=meta)
    fault("after_quarantine")
    counts = {"source": src.name, "rows_in": held.height, "moved": moved,
              "still_quarantined": remaining.height, "duplicates": routed.report.duplicates,
              "replaced": routed.superseded, "recovered": not fresh}
    fault("before_finish")
    ctx.catalog.finish_ingest(ingest_id, counts=counts, event="quarantine_replay")
    return {**counts, "ingest_id": ingest_id}


def _same_reasons(before: pl.DataFrame, after: pl.DataFrame) -> bool:
    if before.height != after.height or REASONS not in before.columns:
        return before.height == after.height == 0
    return sorted(before[REASONS].to_list()) == sorted(after[REASONS].to_list())


# ---- looking at quarantine ---------------------------------------------------------------

_QUOTED = re.compile(r"'[^']*'")
_VALUE = re.compile(r"^([^:]+: )-?[\d.eE+-]+( is (below|above))")


def reason_kind(reason: str) -> str:
    """A reason without its value, for counting: ``"age: '…' is not an integer"``.

    >>> reason_kind("age: 'n/a' is not an integer"), reason_kind("age: -4 is below the minimum 0")
    ("age: '…' is not an integer", 'age: … is below the minimum 0')
    """
    text = _QUOTED.sub("'…'", reason.strip())
    return _VALUE.sub(r"\1…\2", text)


def quarantine_summary(ctx: Context) -> list[dict[str, Any]]:
    """Per source: the quarantine table's version, rows and rows by reason (most first)."""
    out = []
    for src in ctx.config.sources:
        table = tables(src.name)["quarantine"]
        version = ctx.lake.version(table)
        if version is None:
            out.append({"source": src.name, "table": table, "version": None, "rows": 0,
                        "by_reason": {}})
            continue
        reasons = ctx.lake.read(table, version=version, columns=[REASONS])[REASONS]
        counter: Counter[str] = Counter()
        for text in reasons.drop_nulls().to_list():
            counter.update({reason_kind(part) for part in text.split("; ") if part})
        out.append({"source": src.name, "table": table, "version": version,
                    "rows": reasons.len(), "by_reason": dict(counter.most_common())})
    return out


def quarantine_rows(ctx: Context, source: str, *, reason: str | None = None,
                    limit: int = 20) -> pl.DataFrame:
    """Quarantined rows of a source (those whose reasons contain ``reason``), oldest first."""
    import polars as pl

    src = ctx.config.source(source)
    table = tables(src.name)["quarantine"]
    if not ctx.lake.exists(table):
        return pl.DataFrame()
    scan = ctx.lake.scan(table)
    if reason:
        scan = scan.filter(pl.col(REASONS).str.to_lowercase().str.contains(reason.lower(),
                                                                           literal=True))
    frame = scan.head(limit).collect()
    first = [c for c in ("_source_file", "_source_row", REASONS) if c in frame.columns]
    return frame.select(first + [c for c in frame.columns if c not in first])


def sources_status(ctx: Context) -> list[dict[str, Any]]:
    """Each source: name, kind, cursor (and a summary), its last ingest, its ingests summed
    (``totals``, with the data-quality score of everything it ingested) and pending intents."""
    cursors = ctx.catalog.cursors()
    pending = Counter(i["source"] for i in ctx.catalog.pending_ingests())
    out = []
    for src in ctx.config.sources:
        stored = cursors.get(src.name)
        last = ctx.catalog.ingests(source=src.name, limit=1)
        ingest = None
        if last:
            i = last[0]
            ingest = {k: i[k] for k in ("ingest_id", "rows_in", "rows_accepted",
                                        "rows_quarantined", "duplicates", "started_at")}
            ingest["warned_rows"] = int(i.get("warned_rows", 0))
            ingest["quality_score"] = quality_score(i["rows_in"], i["rows_quarantined"],
                                                    ingest["warned_rows"])
        totals = ctx.catalog.ingest_totals(src.name)
        totals["quality_score"] = quality_score(totals["rows_in"], totals["rows_quarantined"],
                                                totals["warned_rows"])
        out.append({
            "name": src.name, "kind": src.kind,
            "cursor": None if stored is None else stored["cursor"],
            "cursor_summary": cursor_summary(None if stored is None else stored["cursor"]),
            "cursor_updated_at": None if stored is None else stored["updated_at"],
            "last_ingest": ingest, "pending": pending.get(src.name, 0),
            "totals": totals,
        })
    return out


def cursor_summary(cursor: dict[str, Any] | None) -> str:
    """A short text for a cursor: ``"3 files"``, ``"updated_at=2026-01-02, offset=7"``.

    >>> cursor_summary({"files": {"a.csv": "ab12", "b.csv": "cd34"}}), cursor_summary(None)
    ('2 files', 'not ingested yet')
    """
    if not cursor:
        return "not ingested yet"
    parts = []
    for k, v in cursor.items():
        if k == "files" and isinstance(v, dict):
            parts.append(f"{len(v)} file{'s' if len(v) != 1 else ''}")
        elif isinstance(v, (dict, list)):
            parts.append(f"{k}: {len(v)} entries")
        else:
            parts.append(f"{k}={v}")
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:79] + "…"
