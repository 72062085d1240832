"""The profile of a lake table version, part by part: each Parquet file is summarized (in this
process or on the Dask workers, ``_cluster``) and the summaries merged, so the column
statistics cover every row with the memory of a few parts; a second pass counts the
histograms and the trends per period on bins and periods fixed from the merged summary; the
sections that need rows use a sample read with a deterministic row filter."""

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
    from loopml.explore import (
        finish_trends,
        merge,
        merge_bins,
        merge_trend_counts,
        plan_bins,
        plan_trends,
    )

    with connect(ctx.config) as client:
        parts = [p for p in ctx.lake.parts(table, version=version) if p.rows]
        summary = None
        for batch in _batches(parts):
            found = map_parts(client, ctx.lake, batch, _summarize_part)
            summary = merge(*([] if summary is None else [summary]), *found)
        if summary is None:
            return None, ctx.lake.read(table, version=version).head(0)
        plans = plan_bins(summary)
        problem = ctx.config.problem
        time_column = problem.time_column if problem.time_column in summary.columns else None
        trend_plan = plan_trends(summary, target=problem.target, task=problem.task,
                                 positive_label=problem.positive_label, time_column=time_column)
        bins: dict[str, Any] = {}
        trends = None
        for batch in _batches(parts):
            found = map_parts(client, ctx.lake, batch, _bins_part, plans, trend_plan)
            bins = merge_bins(bins, *(b for b, _ in found))
            if trend_plan is not None:
                trends = merge_trend_counts(*([] if trends is None else [trends]),
                                            *(t for _, t in found))
        summary.bins = bins
        summary.counted_trends = True
        summary.trends = None if trends is None else finish_trends(trends, trend_plan)
        sample = sample_parts(client, ctx.lake, parts, rows=sample_rows,
                              seed=ctx.config.training.seed)
    return summary, sample


def sample_parts(client: Any, lake: Lake, parts: Sequence[TablePart], *, rows: int,
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


def _bins_part(rows: pl.DataFrame, part: TablePart, plans: dict[str, Any],
               trend_plan: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    from loopml.explore import count_bins, count_trends

    trends = None if trend_plan is None else count_trends(rows, trend_plan)
    return count_bins(rows, plans), trends


def _sample_part(rows: pl.DataFrame, part: TablePart, share: float, seed: int) -> pl.DataFrame:
    import polars as pl

    from loopml.core.frames import own_buffers

    if share >= 1.0:
        return rows
    at = pl.int_range(part.offset, part.offset + rows.height, dtype=pl.UInt64, eager=True)
    unit = (at.hash(seed) // 2048).cast(pl.Float64) / 2.0**53  # uniform in [0, 1)
    return own_buffers(rows.filter(unit < share))  # not the whole part's text buffers
