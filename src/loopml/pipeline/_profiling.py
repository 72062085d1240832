"""The profile of a lake table version, part by part: each Parquet file is summarized (in this
process or on the Dask workers, ``_cluster``) and the summaries merged, so the column
statistics cover every row with the memory of a few parts; a second pass counts the
histograms on bins fixed from the merged summary; the sections that need rows use a sample
read with a deterministic row filter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.pipeline._cluster import connect, map_parts

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import TablePart
    from loopml.explore import TableSummary
    from loopml.lake import Lake
    from loopml.pipeline._context import Context

SAMPLE_ROWS = 200_000  # rows read for the sampled sections (profile's max_rows)
BATCH = 16  # parts whose summaries are held at once before they are merged


def summarize_table(ctx: Context, table: str, *, version: int | None = None,
                    sample_rows: int = SAMPLE_ROWS) -> tuple[TableSummary | None, pl.DataFrame]:
    """(the merged summary of every row of ``table`` at ``version`` with its histogram
    counts, or None for a table without rows; a sample of about ``sample_rows`` rows)."""
    from loopml.explore import merge, merge_bins, plan_bins

    with connect(ctx.config) as client:
        parts = [p for p in ctx.lake.parts(table, version=version) if p.rows]
        summary = None
        for batch in _batches(parts):
            found = map_parts(client, ctx.lake, batch, _summarize_part)
            summary = merge(*([] if summary is None else [summary]), *found)
        if summary is None:
            return None, ctx.lake.read(table, version=version).head(0)
        plans = plan_bins(summary)
        bins: dict[str, Any] = {}
        for batch in _batches(parts):
            bins = merge_bins(bins, *map_parts(client, ctx.lake, batch, _bins_part, plans))
        summary.bins = bins
        sample = read_sample(client, ctx.lake, parts, rows=sample_rows,
                             seed=ctx.config.training.seed)
    return summary, sample


def read_sample(client: Any, lake: Lake, parts: Sequence[TablePart], *, rows: int,
                seed: int) -> pl.DataFrame:
    """About ``rows`` rows of the parts' table, the same ones wherever and in whatever order
    the parts are read: a row is kept when the hash of its table position (with ``seed``)
    falls below rows / the table's rows."""
    import polars as pl

    total = sum(p.rows for p in parts)
    share = min(1.0, rows / total) if total else 1.0
    found = map_parts(client, lake, parts, _sample_part, share, seed)
    return pl.concat(found, how="diagonal_relaxed") if len(found) > 1 else found[0]


def _batches(parts: Sequence[TablePart]) -> list[Sequence[TablePart]]:
    return [parts[i:i + BATCH] for i in range(0, len(parts), BATCH)]


# ---- per part (these run on the workers) ----------------------------------------------------


def _summarize_part(rows: pl.DataFrame, part: TablePart) -> TableSummary:
    from loopml.explore import summarize

    return summarize(rows)


def _bins_part(rows: pl.DataFrame, part: TablePart, plans: dict[str, Any]) -> dict[str, Any]:
    from loopml.explore import count_bins

    return count_bins(rows, plans)


def _sample_part(rows: pl.DataFrame, part: TablePart, share: float, seed: int) -> pl.DataFrame:
    import polars as pl

    if share >= 1.0:
        return rows
    at = pl.int_range(part.offset, part.offset + rows.height, dtype=pl.UInt64, eager=True)
    unit = (at.hash(seed) // 2048).cast(pl.Float64) / 2.0**53  # uniform in [0, 1)
    return rows.filter(unit < share)
