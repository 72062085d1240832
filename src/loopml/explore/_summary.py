"""Column statistics by part: ``summarize`` one part of a table (a Parquet file, a batch),
``merge`` the parts' summaries in any grouping, and read the table's statistics off the
result, as ``profile`` would compute them on the whole table at once.

Exact when merged: row, null, zero and negative counts, minimum, maximum, mean, standard
deviation and skewness (moments merged by Chan's formulas: equal up to float rounding),
distinct counts and value counts while a column has at most ``DISTINCT_CAP`` values.
Sketched beyond: quantiles (``QuantileSketch``: exact up to 65,536 values, then a rank
error the sketch states, ``rank_error``), distinct counts (HyperLogLog, within
``HLL_ERROR``) and, for text and categories, the ``TOP_KEEP`` most frequent values
(Misra-Gries: each count under its true one by at most ``count_error``). The statistics
state these errors where they apply: ``quantile_rank_error`` (a share of the values),
``distinct_error`` (a share of the count) and ``top_count_error`` (rows). Histograms are
counted in a second pass over the parts (``count_bins``) on bins fixed from the merged
minimum, maximum and 1st/99th percentiles (``plan_bins``), so their counts are exact.

>>> import polars as pl
>>> frame = pl.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "a", None]})
>>> s = merge(summarize(frame[:2]), summarize(frame[2:]))
>>> kinds, stats = s.finished()
>>> kinds, stats["x"]["mean"], stats["c"]["distinct"]
({'x': 'numeric', 'c': 'categorical'}, 2.3333333333333335, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from loopml.core.contract import PROVENANCE_COLUMNS
from loopml.core.frames import own_buffers
from loopml.explore._bins import (
    HISTOGRAM_BINS,
    histogram_counts,
    histogram_labels,
    histogram_layout,
)
from loopml.explore._columns import (
    QUANTILES,
    TEXT_MIN_LENGTH,
    TOP_VALUES,
    period_counts,
    prepare,
    time_bars,
    time_period,
)
from loopml.explore._sketch import (
    HLL_ERROR,
    DistinctSketch,
    QuantileSketch,
    keep_frequent,
    merge_counts,
    sort_counts,
)

DISTINCT_CAP = 10_000  # values (and their counts) kept exactly, per column
TOP_KEEP = 1_000  # beyond: the most frequent values of a text or categorical column


@dataclass(slots=True)
class ColumnSummary:
    """The mergeable statistics of one column. ``base``: numeric, boolean, datetime or
    string (categorical or text: decided on the merged summary, as ``column_kind`` does)."""

    base: str
    integer: bool = False
    count: int = 0
    nulls: int = 0
    counts: pl.DataFrame | None = None  # (value, count), most frequent first
    complete: bool = True  # counts hold every value with its exact count
    count_error: int = 0  # otherwise each count may be under its true one by this much
    distinct_sketch: DistinctSketch | None = None  # kept once counts are not complete
    moments: tuple[int, float, float, float] = (0, 0.0, 0.0, 0.0)  # n, mean, M2, M3
    lo: float | None = None  # numeric: values; datetime: epoch seconds; string: lengths
    hi: float | None = None
    zeros: int = 0
    negatives: int = 0
    sketch: QuantileSketch | None = None

    @property
    def distinct(self) -> int:
        """Distinct non-null values: exact while complete, else estimated."""
        if self.complete:
            return 0 if self.counts is None else self.counts.height
        assert self.distinct_sketch is not None
        return self.distinct_sketch.estimate()


@dataclass(slots=True)
class TableSummary:
    """Every profiled column's summary; ``bins``: the histogram counts of the whole table
    (``merge_bins`` of every part's ``count_bins``) on the bins of ``plan_bins``; ``trends``
    (with ``counted_trends``): the trends of every row, counted by part (``_trendparts``)."""

    rows: int
    columns: dict[str, ColumnSummary]
    bins: dict[str, Any] = field(default_factory=dict)
    # the trends over every row (``finish_trends``), when they were counted by part
    trends: Any = None
    counted_trends: bool = False

    def finished(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """(kind of each column, its statistics as ``scalar_stats`` gives them)."""
        kinds, stats = {}, {}
        for name, col in self.columns.items():
            kinds[name], stats[name] = _finish(col)
        return kinds, stats


def profiled_columns(frame: pl.DataFrame) -> list[str]:
    """The columns a profile covers: not provenance, not starting with ``_``."""
    return [n for n in frame.columns if n not in PROVENANCE_COLUMNS and not n.startswith("_")]


def summarize(frame: pl.DataFrame) -> TableSummary:
    """The summary of one part's rows."""
    data = prepare(frame.select(profiled_columns(frame)))
    return TableSummary(rows=data.height,
                        columns={name: _summarize(data[name]) for name in data.columns})


def merge(*summaries: TableSummary) -> TableSummary:
    """The summary of the parts' rows together (any order and grouping of the parts gives
    the same exact statistics; sketches stay within their errors)."""
    out = summaries[0]
    for other in summaries[1:]:
        names = [*out.columns, *(n for n in other.columns if n not in out.columns)]
        columns = {}
        for name in names:
            a, b = out.columns.get(name), other.columns.get(name)
            columns[name] = a if b is None else b if a is None else _merge(a, b)
        out = TableSummary(rows=out.rows + other.rows, columns=columns)
    return out


# ---- one part ------------------------------------------------------------------------------


def _base(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
        return "datetime"
    return "string"


def _summarize(series: pl.Series) -> ColumnSummary:
    base = _base(series.dtype)
    col = ColumnSummary(base=base, integer=series.dtype.is_integer(), count=series.count(),
                        nulls=series.null_count())
    values = series.drop_nulls()
    if base in ("numeric", "string", "boolean"):
        x = (values.str.len_chars() if base == "string" else values).cast(pl.Float64)
        if x.len():
            mean = float(x.mean())  # type: ignore[arg-type]
            d = x - mean
            col.moments = (x.len(), mean, float((d * d).sum()), float((d * d * d).sum()))
            col.lo, col.hi = float(x.min()), float(x.max())  # type: ignore[arg-type]
        if base == "numeric":
            col.zeros, col.negatives = int((x == 0).sum()), int((x < 0).sum())
            col.sketch = QuantileSketch.of(x.to_numpy())
    elif base == "datetime" and values.len():
        t = values.dt.epoch("ms").cast(pl.Float64) / 1000
        col.lo, col.hi = float(t.min()), float(t.max())  # type: ignore[arg-type]
    many = values.n_unique() > DISTINCT_CAP
    if many:
        col.complete, col.distinct_sketch = False, DistinctSketch.of(values)
    if many and base not in ("string", "boolean"):
        return col  # no value counts for numbers and moments
    counts = values.alias("value").value_counts().cast({"count": pl.Int64})
    if many:
        col.counts, col.count_error = keep_frequent(counts, TOP_KEEP)
    else:  # a summary outlives its part: the counts must not hold the part's text
        col.counts = own_buffers(sort_counts(counts))
    return col


# ---- merging -------------------------------------------------------------------------------


def _merge(a: ColumnSummary, b: ColumnSummary) -> ColumnSummary:
    out = replace(a, count=a.count + b.count, nulls=a.nulls + b.nulls,
                  zeros=a.zeros + b.zeros, negatives=a.negatives + b.negatives,
                  moments=_merge_moments(a.moments, b.moments),
                  lo=_pick(min, a.lo, b.lo), hi=_pick(max, a.hi, b.hi),
                  sketch=a.sketch if b.sketch is None else b.sketch if a.sketch is None
                  else a.sketch.merge(b.sketch))
    counts = (None if a.counts is None or b.counts is None
              else a.counts if not b.counts.height else b.counts if not a.counts.height
              else merge_counts(a.counts, b.counts))
    if a.complete and b.complete and counts is not None and counts.height <= DISTINCT_CAP:
        out.counts, out.complete, out.distinct_sketch = counts, True, None
        return out
    out.complete = False
    out.distinct_sketch = _distinct(a).merge(_distinct(b))
    out.count_error = a.count_error + b.count_error
    if a.base in ("string", "boolean") and counts is not None:
        out.counts, cut = keep_frequent(counts, TOP_KEEP)
        out.count_error += cut
    else:
        out.counts = None
    return out


def _distinct(col: ColumnSummary) -> DistinctSketch:
    if col.distinct_sketch is not None:
        return col.distinct_sketch
    if col.counts is None or not col.counts.height:
        return DistinctSketch()
    return DistinctSketch.of(col.counts[col.counts.columns[0]])


def _merge_moments(a: tuple[int, float, float, float],
                   b: tuple[int, float, float, float]) -> tuple[int, float, float, float]:
    """Chan, Golub and LeVeque's pairwise update of the count, mean and central sums M2, M3."""
    na, ma, m2a, m3a = a
    nb, mb, m2b, m3b = b
    if not nb:
        return a
    if not na:
        return b
    n = na + nb
    delta = mb - ma
    mean = ma + delta * nb / n
    m2 = m2a + m2b + delta * delta * na * nb / n
    m3 = (m3a + m3b + delta**3 * na * nb * (na - nb) / (n * n)
          + 3 * delta * (na * m2b - nb * m2a) / n)
    return n, mean, m2, m3


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else fn(a, b)


# ---- the statistics ------------------------------------------------------------------------


def _finish(col: ColumnSummary) -> tuple[str, dict[str, Any]]:
    distinct = col.distinct
    stats: dict[str, Any] = {"count": col.count, "nulls": col.nulls,
                             "distinct": distinct + (1 if col.nulls else 0)}
    n, mean, m2, m3 = col.moments
    kind = col.base
    if col.base == "string":
        text = col.count and distinct > 0.5 * col.count and n and mean > TEXT_MIN_LENGTH
        kind = "text" if text else "categorical"
    if kind == "numeric":  # in the order scalar_stats gives them
        if n:
            stats["mean"] = mean
            if n > 1:
                stats["std"] = math.sqrt(m2 / (n - 1))
            stats["min"] = col.lo
            assert col.sketch is not None
            stats.update({q: col.sketch.quantile(p) for q, p in QUANTILES.items()})
            stats["max"] = col.hi
        stats["zeros"], stats["negatives"] = col.zeros, col.negatives
        if n and m2 > 0 and col.lo != col.hi:  # a constant's skewness is undefined
            stats["skew"] = math.sqrt(n) * m3 / m2**1.5
        if col.sketch is not None and col.sketch.error:
            stats["quantile_rank_error"] = col.sketch.rank_error
    elif kind == "datetime" and col.lo is not None:
        stats["min"], stats["max"] = col.lo, col.hi
    elif kind == "boolean" and n:
        stats["true_share"] = mean
    elif kind == "text" and n:
        stats.update(mean_length=mean, min_length=col.lo, max_length=col.hi)
    if not col.complete:  # the errors of what was sketched, stated beside the statistics
        stats["distinct_error"] = HLL_ERROR
        if col.count_error:
            stats["top_count_error"] = col.count_error
    return kind, stats


def plan_bins(summary: TableSummary) -> dict[str, tuple[str, Any]]:
    """Each numeric and datetime column's histogram bins, fixed from the merged summary as
    ``numeric_histogram`` and ``time_histogram`` choose them from the whole column."""
    kinds, stats = summary.finished()
    plans: dict[str, tuple[str, Any]] = {}
    for name, kind in kinds.items():
        s = stats[name]
        if "min" not in s:
            continue
        if kind == "numeric":
            lo, hi = s["min"], s["max"]
            q01, q99 = s.get("q01", lo), s.get("q99", hi)
            if q99 > q01 and (hi - lo) > 4 * (q99 - q01):
                lo, hi = q01, q99
            layout = histogram_layout(lo=lo, hi=hi, integer=summary.columns[name].integer,
                                      bins=HISTOGRAM_BINS)
            plans[name] = ("numeric", layout)
        elif kind == "datetime":
            plans[name] = ("datetime", time_period(s["max"] - s["min"]))
    return plans


def count_bins(frame: pl.DataFrame, plans: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """One part's histogram counts on the bins of ``plans`` (merged by ``merge``)."""
    data = prepare(frame.select([n for n in plans if n in frame.columns]))
    out: dict[str, Any] = {}
    for name in data.columns:
        kind, plan = plans[name]
        out[name] = (histogram_counts(data[name], plan) if kind == "numeric"
                     else period_counts(data[name], plan))
    return out


def merge_bins(*parts: dict[str, Any]) -> dict[str, Any]:
    """The parts' ``count_bins`` added up."""
    out: dict[str, Any] = {}
    for bins in parts:
        for name, counts in bins.items():
            if name not in out:
                out[name] = counts
            elif isinstance(counts, np.ndarray):
                out[name] = out[name] + counts
            else:
                out[name] = pl.concat([out[name], counts]).group_by("t").agg(pl.col("n").sum())
    return out


def described(summary: TableSummary, name: str, kind: str, stats: dict[str, Any],
              plans: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The distribution fields of one column, as ``describe`` gives them from its rows."""
    plain = {k: float(v) for k, v in stats.items() if k not in ("count", "nulls", "distinct")}
    out: dict[str, Any] = {"stats": plain, "histogram": None, "top_values": None}
    col, plan, bins = summary.columns[name], plans.get(name), summary.bins.get(name)
    if kind == "numeric":
        if plan is not None and bins is not None:
            out["histogram"] = histogram_labels(plan[1], bins)
        plain.pop("q01", None), plain.pop("q99", None)
    elif kind == "datetime":
        if plan is not None and bins is not None:
            out["histogram"] = time_bars(bins, plan[1])
        if "min" in plain:
            plain["span_days"] = (plain["max"] - plain["min"]) / 86400
    elif kind in ("categorical", "boolean", "text") and col.counts is not None:
        top = TOP_VALUES if kind != "text" else 10
        head = col.counts.head(top)
        labels = tuple(str(v) for v in head[head.columns[0]].cast(pl.String))
        shown = tuple(int(n) for n in head["count"])
        out["top_values"] = (labels, shown)
        total = stats["count"] or 1
        plain["top_share"] = shown[0] / total if shown else 0.0
        plain["other_share"] = max(0.0, 1 - sum(shown) / col.count) if col.count else 0.0
    return out
