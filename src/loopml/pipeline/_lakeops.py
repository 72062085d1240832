"""Lake maintenance that the catalog records: compaction and vacuum of one or every table."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.lake import OptimizeResult
    from loopml.pipeline._context import Context


def optimize_lake(
    ctx: Context, table: str | None = None, *, retention_hours: int | None = None
) -> list[OptimizeResult]:
    """Compact and vacuum ``table`` (default: every table) under the retention policy
    (``storage.retention_hours`` unless given); each table's counts become an ``optimize``
    event in the catalog."""
    hours = ctx.config.storage.retention_hours if retention_hours is None else retention_hours
    tables = [table] if table is not None else ctx.lake.tables()
    if table is not None:
        ctx.lake.ref(table)  # an unknown table: a clear error listing the tables
    done = []
    for name in tables:
        result = ctx.lake.optimize(name, retention_hours=hours,
                                   metadata={"loopml.operation": "optimize"})
        ctx.catalog.log_event("optimize", name, asdict(result))
        done.append(result)
    return done
