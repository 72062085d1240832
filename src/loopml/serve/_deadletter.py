"""The dead-letter table: prediction rows the log table could not take, kept as text.

``deadletter/predictions/<model>`` holds every column of the rows as text (so rows whose types
conflicted with the log table still fit one table), plus ``_reason`` (why they are here) and
``_failed_at`` (UTC). Read it with ``Lake.read`` to inspect or replay them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import Lake


def write_dead_letter(lake: Lake, table: str, batch: list[pl.DataFrame], reason: str) -> int:
    """Append ``batch`` to the dead-letter ``table`` as text with ``reason``; returns the rows.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> write_dead_letter(lake, "deadletter/predictions/m", [pl.DataFrame({"x": [1.5]})], "why")
    1
    >>> lake.read("deadletter/predictions/m").select("x", "_reason").rows()
    [('1.5', 'why')]
    """
    import polars as pl

    rows = sum(f.height for f in batch)
    if rows == 0:
        return 0
    text = pl.concat([_as_text(f) for f in batch], how="diagonal").with_columns(
        pl.lit(reason, dtype=pl.String).alias("_reason"),
        pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC")).alias("_failed_at"),
    )
    lake.append(table, text, metadata={"loopml.stage": "serve", "loopml.rows": str(rows)})
    return rows


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, so rows of conflicting types share the dead-letter table."""
    import polars as pl

    out = []
    for name, dtype in frame.schema.items():
        column = frame[name]
        try:
            out.append(column.cast(pl.String))
        except pl.exceptions.PolarsError:
            out.append(pl.Series(name, [None if v is None else str(v) for v in column.to_list()],
                                 dtype=pl.String))
    return pl.DataFrame(out)
