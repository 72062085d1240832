"""Ingest: source files -> raw table -> validation -> clean table + quarantine table.

Each file is ingested once: its sha256 is stored in the raw table's commit metadata, and a
file whose content was ingested before is skipped (a changed file is ingested again).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.core.config import SourceConfig
from loopml.core.contract import Contract
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import IngestResult
from loopml.lake import Lake, table_name
from loopml.quality import validate
from loopml.sources import read_source, resolve_files

if TYPE_CHECKING:
    from loopml.pipeline._context import Context


def ingest(
    source: SourceConfig,
    contract: Contract,
    *,
    lake: Lake,
    base_dir: Path,
    reporter: Reporter = SILENT,
) -> IngestResult | None:
    """Ingest the source's new files; None when every file was ingested before."""
    import polars as pl

    started = datetime.now(UTC)
    t0 = time.monotonic()
    raw_table = table_name("raw", source.name)
    files = resolve_files(source.path, base_dir=base_dir)
    seen = _ingested_hashes(lake, raw_table)
    hashes = {str(f): _sha256(f) for f in files}
    new = [f for f in files if hashes[str(f)] not in seen]
    if not new:
        return None
    reporter.start("ingest", total=3)
    batch = read_source(source, base_dir=base_dir, files=new)
    frame = batch.frame
    ingest_id = uuid.uuid4().hex[:12]
    frame = frame.with_columns(
        pl.lit(ingest_id).alias("_ingest_id"),
        pl.lit(started).cast(pl.Datetime("us", "UTC")).alias("_ingested_at"),
    )
    meta = {
        "loopml.ingest_id": ingest_id,
        "loopml.files": json.dumps(
            {name: hashes[str(f)] for name, f in zip(batch.files, new, strict=True)}
        ),
        "loopml.rows": str(frame.height),
    }
    raw = lake.append(raw_table, frame, metadata=meta)
    reporter.advance("ingest", note=f"{frame.height:,} rows -> {raw}")

    checked = validate(frame, contract)
    report = checked.report
    counts = {
        "loopml.ingest_id": ingest_id,
        "loopml.rows_in": str(report.rows_in),
        "loopml.rows_accepted": str(report.rows_accepted),
        "loopml.rows_quarantined": str(report.rows_quarantined),
    }
    reporter.advance("ingest", note=f"{report.rows_quarantined:,} rows quarantined")
    clean = lake.append(table_name("clean", source.name), checked.clean, metadata=counts)
    quarantine = None
    if checked.quarantined.height:
        quarantine = lake.append(
            table_name("quarantine", source.name), checked.quarantined, metadata=counts
        )
    reporter.finish("ingest", note=f"{report.rows_accepted:,} accepted")
    return IngestResult(
        ingest_id=ingest_id,
        source=source.name,
        files=batch.files,
        report=report,
        raw=raw,
        clean=clean,
        quarantine=quarantine,
        started_at=started,
        seconds=round(time.monotonic() - t0, 3),
    )


def _ingested_hashes(lake: Lake, table: str) -> set[str]:
    if not lake.exists(table):
        return set()
    found: set[str] = set()
    for commit in lake.history(table):
        files = commit.get("loopml.files")
        if files:
            found.update(json.loads(files).values())
    return found


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def ingest_source(
    ctx: Context, source: str | None = None, *, reporter: Reporter = SILENT,
    run_id: str | None = None,
) -> IngestResult | None:
    """Ingest one source of a project's context and record the ingest in its catalog."""
    src = ctx.config.source(source)
    result = ingest(src, ctx.contract(src.name), lake=ctx.lake, base_dir=ctx.root,
                    reporter=reporter)
    if result is not None:
        ctx.catalog.record_ingest(result, run_id=run_id)
    return result
