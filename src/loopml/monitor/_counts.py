"""A window's counts in a reference's bins, per column: what partitions of a window merge by.

Each partition (a chunk of rows, a Dask partition) is counted on its own; ``a + b`` of two
``Counts`` equals the counts of the two partitions together, so the statistics computed from
the sum are those of the whole window (``check_drift`` counts the window in one piece).

>>> import polars as pl
>>> from loopml.core.records import FeatureReference
>>> ref = FeatureReference(name="x", kind="numeric", edges=(2.0,), fine_edges=(1.0, 2.0, 4.0))
>>> a, b = count(pl.Series([0.0, 2.0]), ref), count(pl.Series([3.0, 5.0, None]), ref)
>>> (a + b).coarse.tolist(), (a + b).fine.tolist(), (a + b).sums.tolist()
([2, 2, 1], [1, 0, 1, 1, 1], [0.0, 0.0, 2.0, 3.0, 5.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from loopml.core.bins import sorted_counts
from loopml.core.records import FeatureReference
from loopml.monitor._bins import bin_counts, bin_sums, category_counts, numeric_values


@dataclass(frozen=True, slots=True)
class Counts:
    """One column of (part of) a window in the bins of its ``FeatureReference``.

    ``coarse``: rows per PSI bin (numeric) or kept category and "other", then missing.
    ``fine`` (numeric): present values below the reference minimum, equal to it, in each
    fine bin (e_i-1, e_i], and above the maximum; ``sums``: the sum of the values in each of
    these bins (they make Wasserstein's integral exact wherever the CDFs do not cross).
    ``unseen``: present values outside the reference's known categories.
    """

    coarse: np.ndarray
    fine: np.ndarray
    sums: np.ndarray
    unseen: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            coarse=self.coarse + other.coarse,
            fine=self.fine + other.fine,
            sums=self.sums + other.sums,
            unseen=self.unseen + other.unseen,
        )

    @property
    def rows(self) -> int:
        return int(self.coarse.sum())


def count(series: pl.Series, ref: FeatureReference) -> Counts:
    """Count one column of a window (or of a partition of it) in ``ref``'s bins."""
    if ref.kind != "numeric":
        coarse, unseen = category_counts(series, ref)
        return Counts(coarse=coarse, fine=_NONE, sums=_NONE.astype(float), unseen=unseen)
    if ref.fine_edges:
        return _count_numeric(series, ref)
    return Counts(coarse=bin_counts(series, ref), fine=_NONE, sums=_NONE.astype(float))


def _count_numeric(series: pl.Series, ref: FeatureReference) -> Counts:
    """One pass over the values for the fine bins; the coarse (PSI) bins are sums of fine
    ones when their edges are among the fine edges (quantiles at multiples of 1/100 are)."""
    values = np.sort(numeric_values(series))  # then each edge is one binary search
    missing = series.len() - values.size  # null or NaN
    edges = np.asarray(ref.fine_edges, dtype=float)
    # 0: below the minimum, 1: equal to it, i + 1: (e_i-1, e_i], len(edges) + 1: above the max
    ends = np.concatenate([[0], [np.searchsorted(values, edges[0], side="left")],
                           np.searchsorted(values, edges, side="right"), [values.size]])
    fine = np.diff(ends).astype(np.int64)
    origin = float(ref.mean or 0.0)
    sums = bin_sums(values, ends[1:], origin) + fine * origin
    position = np.searchsorted(edges, ref.edges)
    if np.array_equal(edges[np.minimum(position, edges.size - 1)], ref.edges):
        cumulative = np.cumsum(fine)
        inner = np.diff(np.concatenate([[0], cumulative[position + 1], [values.size]]))
        coarse = np.append(inner, missing).astype(np.int64)
    else:  # the values are sorted already: count the coarse bins by binary search too
        coarse = np.append(sorted_counts(values, ref.edges), missing).astype(np.int64)
    return Counts(coarse=coarse, fine=fine, sums=sums)


_NONE = np.zeros(0, dtype=np.int64)
