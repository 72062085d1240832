"""Counting a column's rows in the bins of a ``FeatureReference``.

The binning itself (quantile edges, right-closed bins, labels) is ``loopml.core.bins``, shared
with explore. Counts are plain integer arrays, so counts of chunks of a window add up to the
counts of the whole window: shares (and so every statistic) are computed only once all chunks
are counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import polars as pl

from loopml.core.bins import (
    MAX_CATEGORIES,
    clean,
    fmt,
    interval_labels,
    quantile_edges,
    quantiles,
    top_categories,
)
from loopml.core.bins import bin_counts as count_values
from loopml.core.records import FeatureReference

T = TypeVar("T")
R = TypeVar("R")
FINE_BINS = 100  # quantile bins behind Kolmogorov–Smirnov and Wasserstein
MAX_KNOWN = 1000  # categorical values kept to count unseen ones

__all__ = ["MAX_CATEGORIES", "bin_counts", "bin_labels", "bin_sums", "category_counts", "clean",
           "fine_reference",
           "in_threads", "numeric_edges", "numeric_values", "shares",
           "top_categories"]  # fmt: skip


def numeric_values(series: pl.Series) -> np.ndarray:
    """The present values of a numeric column as float64 (NaN and null dropped)."""
    return clean(series).drop_nulls().cast(pl.Float64).to_numpy()


def numeric_edges(series: pl.Series, bins: int) -> tuple[float, ...]:
    """Inner quantile edges (the 1/bins ... (bins-1)/bins "lower" quantiles), deduplicated."""
    return tuple(float(v) for v in quantile_edges(numeric_values(series), bins))


def fine_reference(values: np.ndarray, bins: int = FINE_BINS) -> dict[str, object]:
    """``FeatureReference`` fields of the present ``values``, sorted ascending, for KS and
    Wasserstein: ``fine_edges`` are the deduplicated 0, 1/bins, ..., 1 quantiles (the first is
    the minimum, the last the maximum); ``fine_shares``/``fine_means`` are the share and mean
    of the values per bin ``x == e_0`` then ``e_i-1 < x <= e_i``; ``mean``/``std`` of all.

    >>> fine = fine_reference(np.array([1.0, 2.0, 3.0, 4.0]), bins=2)
    >>> fine["fine_edges"], fine["fine_shares"], fine["fine_means"], fine["mean"]
    ((1.0, 2.0, 4.0), (0.25, 0.25, 0.5), (1.0, 2.0, 3.5), 2.5)
    """
    if values.size == 0:
        return {}
    edges = np.unique(quantiles(values, np.arange(bins + 1) / bins, presorted=True))
    ends = np.searchsorted(values, edges, side="right")  # nothing lies above the maximum
    counts = np.diff(np.concatenate([[0], ends]))
    mean = float(values.mean())
    sums = bin_sums(values, ends, mean)
    means = np.where(counts > 0, sums / np.maximum(counts, 1) + mean, edges)
    return {
        "fine_edges": tuple(float(e) for e in edges),
        "fine_shares": shares(counts),
        "fine_means": tuple(float(m) for m in means),
        "mean": mean,
        "std": float(values.std()),
    }


def bin_sums(values: np.ndarray, ends: np.ndarray, origin: float) -> np.ndarray:
    """Sums of ``values - origin`` (sorted values) over the runs ending before each of ``ends``
    (the first run starts at 0); centred on ``origin`` so that large values lose no digits.

    >>> bin_sums(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 4]), 0.0).tolist()
    [0.0, 1.0, 9.0]
    """
    starts = np.concatenate([[0], ends[:-1]])
    filled = starts < ends
    out = np.zeros(len(ends))
    if filled.any():  # bins are contiguous: each filled run ends where the next one starts
        out[filled] = np.add.reduceat(values[: ends[-1]] - origin, starts[filled])
    return out


def in_threads(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[function(i) for i in items]`` on a few threads: the per-column work (NumPy sorts,
    Polars counts) releases the GIL, so columns are counted side by side."""
    if len(items) < 2:
        return [function(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(function, items))


def bin_counts(series: pl.Series, ref: FeatureReference) -> np.ndarray:
    """Rows of ``series`` per bin of ``ref``: numeric bins are right-closed, (e[i-1], e[i]];
    categories not in the reference count as "other"; the last slot counts missing values."""
    if ref.kind != "numeric":
        return category_counts(series, ref)[0]
    series = clean(series)
    inner = count_values(numeric_values(series), ref.edges)
    return np.append(inner, series.null_count()).astype(np.int64)


def category_counts(series: pl.Series, ref: FeatureReference) -> tuple[np.ndarray, int]:
    """``bin_counts`` of a categorical column and, from the same one count of its values, how
    many present values lie outside ``ref.known`` (0 when the reference keeps none).

    >>> ref = FeatureReference(name="c", kind="categorical", categories=("a",), known=("a", "b"))
    >>> counts, unseen = category_counts(pl.Series(["a", "b", "z", None]), ref)
    >>> counts.tolist(), unseen
    ([1, 2, 1], 1)
    """
    series = clean(series)
    found = dict(series.drop_nulls().cast(pl.String).value_counts().iter_rows())
    known = set(ref.known)
    unseen = sum(n for value, n in found.items() if value not in known) if known else 0
    kept = [found.pop(c, 0) for c in ref.categories]
    counts = np.array([*kept, sum(found.values()), series.null_count()], dtype=np.int64)
    return counts, unseen


def bin_labels(ref: FeatureReference) -> tuple[str, ...]:
    """One label a share: the intervals or categories, then "other" and/or "missing".

    >>> bin_labels(FeatureReference(name="x", kind="numeric", edges=(1.0, 2.5)))
    ('≤ 1', '(1, 2.5]', '> 2.5', 'missing')
    """
    if ref.kind == "numeric":
        return (*interval_labels(ref.edges, fmt), "missing")
    return (*ref.categories, "other", "missing")


def shares(counts: Sequence[int] | np.ndarray) -> tuple[float, ...]:
    """Counts as shares of their total (all zero when there are no rows)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return tuple(float(c) for c in (counts / total if total else counts))
