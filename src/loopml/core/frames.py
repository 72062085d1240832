"""Polars frames that hold only their own rows' memory.

Polars keeps the buffers of a frame it filtered, sliced or gathered from: the kept text values
still point into the whole source column (string views), so a few rows kept from each part of
a table would hold every part's text. ``own_buffers`` copies such columns into buffers of
their own; a sample, a sketch's frequent values or anything else kept across parts goes
through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def own_buffers(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its text and binary columns in buffers of their own (other columns
    are left as they are: Polars copies them when it filters or gathers).

    >>> import polars as pl
    >>> big = pl.DataFrame({"s": [f"a value longer than twelve bytes {i}" for i in range(10)]})
    >>> own_buffers(big.head(2))["s"].to_list() == big.head(2)["s"].to_list()
    True
    """
    import polars as pl

    text = [c for c, t in frame.schema.items() if t in (pl.String, pl.Binary)]
    if not text or not frame.height:
        return frame
    out = pl.from_arrow(frame.select(text).to_arrow(compat_level=pl.CompatLevel.oldest()))
    assert isinstance(out, pl.DataFrame)
    return frame.with_columns(out.get_columns())
