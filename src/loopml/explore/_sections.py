"""Whole-table sections of the profile: missingness patterns, exact duplicates and trends
over time. Each is one or two vectorised Polars passes over every row.

>>> import polars as pl
>>> f = pl.DataFrame({"a": [1, None, None, 4], "b": [None, None, 3, 4], "c": [1, 1, 1, 1]})
>>> missing_patterns(f).combinations
(((), 1), (('a',), 1), (('b',), 1), (('a', 'b'), 1))
>>> duplicates(pl.DataFrame({"x": [1, 1, 1, 2], "y": ["a", "a", "a", "b"]})).rows
2
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from loopml.core.records import Duplicates, MissingPatterns, Trends

MAX_PATTERN_COLUMNS = 60  # missing indicators packed into one 64-bit word per row
TOP_COMBINATIONS = 15
DUPLICATE_EXAMPLES = 5
MAX_TREND_COLUMNS = 12
TREND_PERIODS = 60  # at most about this many periods
PERIODS = (
    ("1h", 3600), ("6h", 21600), ("1d", 86400), ("1w", 604800), ("1mo", 2629800),
    ("3mo", 7889400), ("1y", 31557600),
)  # fmt: skip


def missing_patterns(frame: pl.DataFrame) -> MissingPatterns | None:
    """The most common combinations of missing columns and the nullity correlation of the
    columns that are sometimes (not always) missing; None when nothing is missing.

    One pass packs each row's missing columns into a bit mask and counts the masks; the
    pairwise co-missing counts, hence the nullity correlations, follow from those counts.
    """
    nulls = frame.null_count().row(0)
    rows = frame.height
    partly = [(n, name) for name, n in zip(frame.columns, nulls, strict=True) if 0 < n]
    if not partly:
        return None
    partly.sort(key=lambda t: -t[0])
    names = [name for _, name in partly[:MAX_PATTERN_COLUMNS]]
    mask = pl.sum_horizontal(
        pl.col(name).is_null().cast(pl.UInt64) * (1 << i) for i, name in enumerate(names)
    ).alias("mask")
    counts = frame.select(mask).to_series().value_counts(sort=True)
    masks = counts["mask"].to_numpy().astype(np.uint64)
    n = counts["count"].to_numpy().astype(np.int64)
    bits = ((masks[:, None] >> np.arange(len(names), dtype=np.uint64)) & np.uint64(1)).astype(
        np.int64
    )  # one row per distinct mask, one column per name
    order = np.lexsort((masks, -n))  # most rows first, ties by mask: deterministic
    combos = tuple(
        (tuple(name for name, b in zip(names, bits[k], strict=True) if b), int(n[k]))
        for k in order[:TOP_COMBINATIONS]
    )
    varying = [i for i, name in enumerate(names) if 0 < partly[i][0] < rows]
    nullity = None
    if len(varying) >= 2:
        b = bits[:, varying]
        both = (b * n[:, None]).T @ b  # co-missing counts
        single = np.diag(both).astype(float)
        spread = np.sqrt(single * (rows - single))
        phi = (rows * both - np.outer(single, single)) / np.outer(spread, spread)
        phi = np.clip(np.nan_to_num(phi), -1.0, 1.0)
        np.fill_diagonal(phi, 1.0)
        nullity = (
            tuple(names[i] for i in varying),
            tuple(tuple(round(float(v), 4) for v in r) for r in phi),
        )
    return MissingPatterns(columns=tuple(names), combinations=combos, nullity=nullity)


def duplicates(frame: pl.DataFrame) -> Duplicates:
    """Exact duplicate rows: extra copies, groups, and the most repeated rows as examples.

    Rows are compared by a 64-bit hash of all their values (one pass); the examples are
    then grouped by their actual values, so a hash collision never shows a false pair.
    """
    hashes = frame.hash_rows(seed=0)
    distinct = hashes.n_unique()
    extra = frame.height - distinct
    if extra == 0:
        return Duplicates(rows=0, groups=0)
    counted = hashes.value_counts(sort=True, name="copies")
    repeated = counted.filter(pl.col("copies") > 1)
    top = repeated.head(DUPLICATE_EXAMPLES)
    picked = frame.filter(hashes.is_in(top[hashes.name].implode()))
    grouped = picked.group_by(frame.columns, maintain_order=True).len("copies")
    grouped = grouped.sort("copies", descending=True, maintain_order=True)
    grouped = grouped.filter(pl.col("copies") > 1).head(DUPLICATE_EXAMPLES)
    examples = tuple(
        (tuple(cell_text(v) for v in row[:-1]), int(row[-1])) for row in grouped.iter_rows()
    )
    return Duplicates(rows=extra, groups=repeated.height, columns=tuple(frame.columns),
                      examples=examples)  # fmt: skip


def cell_text(value: Any) -> str:
    """A value as a table cell shows it."""
    return "—" if value is None else str(value)


def trend_period(lo: Any, hi: Any) -> str:
    """The shortest period from hours to years giving at most ``TREND_PERIODS`` periods."""
    span = (hi - lo).total_seconds()
    return next((p for p, s in PERIODS if span / s <= TREND_PERIODS), "10y")


def trends(
    frame: pl.DataFrame,
    time_column: str,
    *,
    numeric: list[str],
    target_expr: pl.Expr | None = None,
) -> Trends | None:
    """Rows, the target (``target_expr``: 1.0 for the positive class, else the target
    itself) and the means of the ``numeric`` columns per period of ``time_column``, in one
    ``group_by``; None when the time column has fewer than two distinct periods."""
    t = frame[time_column]
    if t.dtype == pl.Date:
        t = t.cast(pl.Datetime("us"))
    lo, hi = t.min(), t.max()
    if lo is None or hi is None or lo == hi:
        return None
    every = trend_period(lo, hi)
    numeric = [n for n in numeric if n != time_column][:MAX_TREND_COLUMNS]
    shown = [] if target_expr is None else [target_expr.cast(pl.Float64).alias("\0y")]
    keyed = frame.select(t.dt.truncate(every).alias("\0t"), *shown, *numeric)
    aggs = [pl.len().alias("\0rows")]
    if target_expr is not None:
        aggs.append(pl.col("\0y").mean().alias("\0target"))
    aggs += [pl.col(n).cast(pl.Float64).mean() for n in numeric]
    per = keyed.drop_nulls("\0t").group_by("\0t").agg(aggs).sort("\0t")
    if per.height < 2:
        return None
    short = every.endswith(("d", "w", "mo", "y"))
    labels = tuple(v.strftime("%Y-%m-%d" if short else "%Y-%m-%d %H:%M") for v in per["\0t"])
    return Trends(
        time_column=time_column,
        period=every,
        labels=labels,
        rows=tuple(int(v) for v in per["\0rows"]),
        target=None if target_expr is None else _floats(per["\0target"]),
        means=tuple((n, _floats(per[n])) for n in numeric),
    )


def _floats(series: pl.Series) -> tuple[float | None, ...]:
    return tuple(
        None if v is None or not math.isfinite(v) else round(float(v), 6)
        for v in series.cast(pl.Float64).to_list()
    )
