"""Counting a column's rows in the bins of a ``FeatureReference``.

Counts are plain integer arrays, so counts of chunks of a window add up to the counts of the
whole window: shares (and so PSI) are computed only once all chunks are counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from loopml.core.records import FeatureReference

MAX_CATEGORIES = 20


def clean(series: pl.Series) -> pl.Series:
    """NaN counts as missing, like null."""
    return series.fill_nan(None) if series.dtype.is_float() else series


def numeric_edges(series: pl.Series, bins: int) -> tuple[float, ...]:
    """Inner quantile edges (the 1/bins ... (bins-1)/bins quantiles), deduplicated. The
    "lower" quantile is an observed value with at most the quantile's share below or at it,
    which suits right-closed bins."""
    values = clean(series).drop_nulls().cast(pl.Float64)
    if values.len() == 0:
        return ()
    frame = values.to_frame("x")
    qs = [i / bins for i in range(1, bins)]
    row = frame.select(pl.col("x").quantile(q, "lower").alias(str(q)) for q in qs).row(0)
    return tuple(sorted({float(v) for v in row}))


def top_categories(series: pl.Series, top: int = MAX_CATEGORIES) -> tuple[str, ...]:
    """The ``top`` most frequent values as text, ties broken by value so builds repeat."""
    text = series.drop_nulls().cast(pl.String)
    counts = text.value_counts().sort(["count", text.name], descending=[True, False])
    return tuple(counts[text.name].head(top).to_list())


def bin_counts(series: pl.Series, ref: FeatureReference) -> np.ndarray:
    """Rows of ``series`` per bin of ``ref``: numeric bins are right-closed, (e[i-1], e[i]];
    categories not in the reference count as "other"; the last slot counts missing values."""
    series = clean(series)
    missing = int(series.null_count())
    if ref.kind == "numeric":
        values = series.drop_nulls().cast(pl.Float64).to_numpy()
        index = np.searchsorted(np.asarray(ref.edges, dtype=float), values, side="left")
        inner = np.bincount(index, minlength=len(ref.edges) + 1)
    else:
        text = series.drop_nulls().cast(pl.String)
        found = dict(text.value_counts().iter_rows())
        kept = [found.pop(c, 0) for c in ref.categories]
        inner = np.array([*kept, sum(found.values())], dtype=np.int64)
    return np.append(inner, missing).astype(np.int64)


def bin_labels(ref: FeatureReference) -> tuple[str, ...]:
    """One label a share: the intervals or categories, then "other" and/or "missing".

    >>> bin_labels(FeatureReference(name="x", kind="numeric", edges=(1.0, 2.5)))
    ('≤ 1', '(1, 2.5]', '> 2.5', 'missing')
    """
    if ref.kind == "numeric":
        e = [_short(x) for x in ref.edges]
        if not e:
            return ("all", "missing")
        inner = [f"({a}, {b}]" for a, b in zip(e[:-1], e[1:], strict=True)]
        return (f"≤ {e[0]}", *inner, f"> {e[-1]}", "missing")
    return (*ref.categories, "other", "missing")


def shares(counts: Sequence[int] | np.ndarray) -> tuple[float, ...]:
    """Counts as shares of their total (all zero when there are no rows)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return tuple(float(c) for c in (counts / total if total else counts))


def _short(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.4g}"
