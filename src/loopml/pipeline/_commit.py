"""Committing one chunk crash-safely: intent, raw, clean + quarantine, then cursor.

The protocol (every lake commit carries ``loopml.ingest_id`` in its metadata):

1. ``catalog.begin_ingest``: a pending intent with the cursor before and after the chunk, the
   lake versions before, and the contract itself (so a restart validates the same way);
2. append the rows as read (and the rows the reader rejected) to ``raw/<source>``;
3. read them back, route them (validate, duplicates against the clean table as of the version
   in the intent, type conflicts, latest row per key) and commit ``clean/<source>`` (append or
   merge by key) and ``quarantine/<source>``;
4. ``catalog.finish_ingest``: the intent is done, counts, the source's cursor and an event in
   one catalog transaction; then ``chunk.on_commit()``.

A restart calls ``complete`` again for a pending intent whose raw commit exists: each table
already holding a commit with the ingest's id is skipped, the others are written from the same
raw rows, the same contract and the same clean version, so every row lands exactly once.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.core.contract import Contract
from loopml.core.errors import LoopmlError
from loopml.core.records import IngestResult, TableRef
from loopml.lake import table_name
from loopml.pipeline._route import RAW_TEXT, ROW_HASH, Routed, route, row_hash
from loopml.pipeline._seen import forget, lookup, remember
from loopml.quality import REASONS

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import SourceConfig
    from loopml.core.records import Chunk
    from loopml.lake import Lake
    from loopml.pipeline._context import Context

TAG = "loopml.ingest_id"
KILL_ENV = "LOOPML_TEST_KILL_AT"  # e.g. "after_raw" or "after_clean:2" (the 2nd time there)
# in-process tests set this to raise at a point instead of killing the process
crash_hook: Callable[[str], None] | None = None
_passed: Counter[str] = Counter()


def fault(point: str) -> None:
    """A test's crash point: SIGKILL this process when ``LOOPML_TEST_KILL_AT`` names it."""
    if crash_hook is not None:
        crash_hook(point)
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name == point:
        _passed[point] += 1
        if _passed[point] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def tables(source: str) -> dict[str, str]:
    return {zone: table_name(zone, source) for zone in ("raw", "clean", "quarantine")}


_ROUTING = ("key", "latest_by", "on_type_conflict", "partition_by")


def routing_of(src: SourceConfig) -> dict[str, Any]:
    """The source settings that decide where rows go and how they are cleaned; an intent
    records them so a restart routes and cleans the same way even if loopml.yaml changed
    (never the whole config: no secrets)."""
    cleaning = None if src.cleaning is None else src.cleaning.recorded()
    return {**{name: getattr(src, name) for name in _ROUTING}, "cleaning": cleaning}


def as_recorded(src: SourceConfig, intent: dict[str, Any]) -> SourceConfig:
    """``src`` with the routing and cleaning settings its intent recorded (an intent from
    before cleaning was recorded cleaned nothing)."""
    from loopml.core.cleaning import CleaningConfig

    recorded = intent["details"].get("routing")
    if not recorded:
        return src
    update = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()
              if k != "cleaning"}
    cleaning = recorded.get("cleaning")
    update["cleaning"] = None if cleaning is None else CleaningConfig.model_validate(cleaning)
    return src.model_copy(update=update)


@contextmanager
def undo_on_error(ctx: Context, intent: dict[str, Any], zones: tuple[str, ...]) -> Iterator[None]:
    """Undo the intent when a LoopmlError stops it before any of ``zones`` holds its commit
    (nothing is lost: the source is read again, or the replay redone), then re-raise."""
    try:
        yield
    except LoopmlError as exc:
        names, versions = tables(intent["source"]), intent["versions"]
        if not any(tagged(ctx.lake, names[z], intent["ingest_id"], versions.get(z))
                   for z in zones):
            ctx.catalog.undo_ingest(intent["ingest_id"], reason=exc.message)
        raise


def begin(ctx: Context, src: SourceConfig, chunk: Chunk, *, cursor: dict[str, Any] | None,
          run_id: str | None) -> tuple[str, int, Early]:
    """Record the intent and append the chunk to raw: (ingest id, raw version, the rows as
    appended with their routing computed meanwhile)."""
    import polars as pl

    contract = ctx.contract(src.name)
    names = tables(src.name)
    versions = {zone: ctx.lake.version(t) for zone, t in names.items()}
    ingest_id = ctx.catalog.begin_ingest(
        src.name, cursor_before=cursor, cursor_after=chunk.cursor, versions=versions,
        contract_fingerprint=contract.fingerprint(),
        details={"contract": contract.to_dict(), "routing": routing_of(src),
                 "files": list(chunk.files), "run_id": run_id},
    )
    fault("after_begin")
    started = datetime.now(UTC)
    parts = [chunk.frame]
    if chunk.rejected is not None and chunk.rejected.height:
        parts.append(chunk.rejected)
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")
    # raw always has the reader's columns for rejected rows, so that the first chunk with a
    # rejected line does not change the table's schema (a slower write than an append)
    frame = frame.with_columns(pl.lit(None, pl.String).alias(c)
                               for c in (RAW_TEXT, REASONS) if c not in frame.columns)
    frame = frame.with_columns(
        pl.lit(ingest_id).alias("_ingest_id"),
        pl.lit(started).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )
    meta = {TAG: ingest_id, "loopml.rows": str(frame.height)}
    early = Early(appended=frame)
    predicted = ctx.lake.as_appended(names["raw"], frame)
    if predicted is not None:  # route while raw is written; used only once raw is in
        rows, rejected = split_rejected(predicted)
        early.predicted = predicted
        early.routed = _pool().submit(
            route_against, ctx.lake, names["clean"], versions.get("clean"), rows,
            Contract.from_dict(contract.to_dict()), rejected=rejected, src=src)
    with undo_on_error(ctx, {"ingest_id": ingest_id, "source": src.name, "versions": versions},
                       ("raw",)):
        raw = ctx.lake.append(names["raw"], frame, metadata=meta)
    fault("after_raw")
    return ingest_id, raw.version, early


@dataclass(slots=True)
class Early:
    """A chunk as ``begin`` appended it to raw, and its routing computed meanwhile from the
    rows as raw was predicted to read them back (``Lake.as_appended``)."""

    appended: pl.DataFrame
    predicted: pl.DataFrame | None = None
    routed: Future[Routed] | None = None

    def result(self, raw: pl.DataFrame) -> Routed | None:
        """The early routing if it was computed from exactly ``raw`` (same columns, order and
        types: then the same values, see ``Lake.as_appended``), else None (route again; an
        error of the early routing is raised again there, where it undoes the intent)."""
        if self.routed is None or self.predicted is None:
            return None
        same = list(self.predicted.schema.items()) == list(raw.schema.items())
        try:
            routed = self.routed.result()
        except Exception:
            return None
        return routed if same and self.predicted.height == raw.height else None


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopml-route")


def complete(ctx: Context, src: SourceConfig, intent: dict[str, Any], *, raw_version: int,
             fresh: bool, run_id: str | None = None,
             early: Early | None = None) -> IngestResult:
    """Steps 3 and 4 for an intent whose raw commit is ``raw_version``.

    ``early`` (the normal path: the frame ``begin`` has just committed to raw) spares
    reading the raw rows back when the lake vouches that they read back exactly as they are
    (``Lake.as_read``), and routing them again when ``begin`` routed those very rows while
    raw was written; a restart always reads them from raw. Both give ``route`` the same
    rows, so a crash at any later point is recovered exactly as the normal path would go on;
    the lake and catalog steps keep their order (nothing is written before raw is in).
    """
    import polars as pl

    t0 = time.monotonic()
    ingest_id, versions = intent["ingest_id"], intent["versions"]
    contract = Contract.from_dict(intent["details"]["contract"])
    src = as_recorded(src, intent)
    names = tables(src.name)
    raw = routed = None
    if early is not None:
        raw = ctx.lake.as_read(names["raw"], early.appended, version=raw_version)
    if raw is None:
        raw = ctx.lake.scan(names["raw"], version=raw_version).filter(
            pl.col("_ingest_id") == ingest_id
        ).collect()
    else:
        routed = early.result(raw)  # type: ignore[union-attr]  # raw came from early
    rows, rejected = split_rejected(raw)
    with undo_on_error(ctx, intent, ("clean", "quarantine")):
        if routed is None:
            routed = route_against(ctx.lake, names["clean"], versions.get("clean"), rows,
                                   contract, rejected=rejected, src=src)
    replaced = routed.superseded + _replaced(ctx.lake, names["clean"], versions.get("clean"),
                                             routed.clean, src.key)
    meta = {TAG: ingest_id, **{f"loopml.{k}": str(v) for k, v in counts_of(routed).items()}}
    skip = not fresh and tagged(ctx.lake, names["clean"], ingest_id, versions.get("clean"))
    clean_ref = write_clean(ctx.lake, src, names["clean"], routed.clean, meta, skip=skip)
    if src.key or skip:  # a merge replaces rows; a skipped write was made by an earlier run
        forget(ctx.lake, names["clean"])
    elif routed.clean.height:
        remember(ctx.lake, names["clean"], before=versions.get("clean"),
                 after=clean_ref.version, ingest_id=ingest_id, hashes=routed.clean[ROW_HASH])
    fault("after_clean")
    q_ref = None
    if routed.quarantine.height:
        if fresh or not tagged(ctx.lake, names["quarantine"], ingest_id,
                               versions.get("quarantine")):
            q_ref = ctx.lake.append(names["quarantine"], routed.quarantine, metadata=meta)
        else:
            q_ref = ctx.lake.ref(names["quarantine"])
    fault("after_quarantine")
    counts = {**counts_of(routed), "replaced": replaced, "recovered": not fresh}
    result = IngestResult(
        ingest_id=ingest_id, source=src.name, files=tuple(intent["details"].get("files", ())),
        report=routed.report, raw=TableRef(name=names["raw"], version=raw_version),
        clean=clean_ref, quarantine=q_ref, started_at=intent["started_at"],
        seconds=round(time.monotonic() - t0, 3), replaced=replaced,
        rejected=0 if rejected is None else rejected.height, recovered=not fresh,
    )
    fault("before_finish")
    ctx.catalog.finish_ingest(ingest_id, counts=counts, result=result,
                              run_id=run_id or intent["details"].get("run_id"), event="ingest")
    return result


def split_rejected(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The rows as read, and the rows the reader rejected (they carry ``_reasons``)."""
    import polars as pl

    if REASONS not in raw.columns:
        return raw, None
    extra = [c for c in (REASONS, RAW_TEXT) if c in raw.columns]
    if raw[REASONS].null_count() == raw.height:
        return raw.drop(extra), None
    bad = pl.col(REASONS).is_not_null()
    rejected = raw.filter(bad)
    return raw.filter(~bad).drop(extra), (rejected if rejected.height else None)


def route_against(lake: Lake, clean: str, version: int | None, rows: pl.DataFrame,
                  contract: Contract, *, rejected: pl.DataFrame | None,
                  src: SourceConfig) -> Routed:
    """``route`` the rows against the clean table as it was at ``version``."""
    import polars as pl

    seen: Any = None
    newer: Any = None
    schema = None
    if version is not None:
        scan = lake.scan(clean, version=version)
        schema = dict(scan.collect_schema())
        if ROW_HASH in schema:
            seen = lookup(lake, clean, version, scan)
        else:  # a table written before row hashes: hash its contract columns once
            have = [n for n in contract.names if n in schema]
            seen = row_hash(scan.select(have).collect(), contract) if have else None
        by, keys = src.latest_by, list(src.key)
        if keys and by and all(c in schema for c in (*keys, by)):
            def newer(batch: pl.DataFrame) -> pl.Series:  # the table's rows of these keys only
                held = (scan.select(*keys, pl.col(by).alias("__held"))
                        .join(batch.lazy().select(keys).unique(), on=keys, how="semi")
                        .group_by(keys).agg(pl.col("__held").max())
                        .collect(engine="streaming"))
                mine = batch.select(keys + [by]).with_row_index("__pos")
                joined = mine.join(held, on=keys, how="left", nulls_equal=False).sort("__pos")
                return (joined["__held"] > joined[by]).fill_null(False)
    return route(rows, contract, rejected=rejected, seen=seen, table_schema=schema, table=clean,
                 key=tuple(src.key), latest_by=src.latest_by, newer=newer,
                 on_type_conflict=src.on_type_conflict, cleaning=src.cleaning)


def write_clean(lake: Lake, src: SourceConfig, table: str, rows: pl.DataFrame,
                meta: dict[str, str], *, skip: bool) -> TableRef:
    """Append (or merge by key) the clean rows; the table is created even when empty."""
    exists = lake.exists(table)
    if skip or (exists and rows.height == 0):
        return lake.ref(table)
    if src.key and exists:
        return lake.merge(table, rows, keys=src.key, metadata=meta)
    return lake.append(table, rows, metadata=meta, partition_by=src.partition_by or None)


def tagged(lake: Lake, table: str, ingest_id: str, since: int | None) -> bool:
    """Whether a commit after version ``since`` carries ``ingest_id`` (recent history only)."""
    return raw_commit(lake, table, ingest_id, since) is not None


def raw_commit(lake: Lake, table: str, ingest_id: str, since: int | None) -> int | None:
    """The version of the commit of ``ingest_id`` to ``table`` after ``since``, if any."""
    return lake.commit_with(table, TAG, ingest_id, since=since)


def counts_of(routed: Routed) -> dict[str, int]:
    r = routed.report
    return {"rows_in": r.rows_in, "accepted": r.rows_accepted,
            "quarantined": r.rows_quarantined, "duplicates": r.duplicates,
            "type_conflicts": routed.conflicts}


def _replaced(lake: Lake, table: str, version: int | None, rows: pl.DataFrame,
              key: tuple[str, ...]) -> int:
    """How many of ``rows`` have a key already in the table (at ``version``)."""
    if not key or version is None or rows.height == 0:
        return 0
    keys = list(key)
    mine = rows.select(keys).unique()
    try:  # the table's keys among this chunk's only, streamed: memory bounded by the chunk
        held = (lake.scan(table, version=version).select(keys)
                .join(mine.lazy(), on=keys, how="semi").unique()
                .collect(engine="streaming"))
        return rows.select(keys).join(held, on=keys, how="semi").height
    except Exception:  # key types differ: the merge reports that itself
        return 0
