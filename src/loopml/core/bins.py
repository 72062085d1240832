"""The one quantile binning: explore's target relationships and monitor's drift statistics
both cut numbers at these edges, count rows per bin the same way and label bins alike.

Bins are right-closed: with inner edges e_0 < ... < e_k-1 a value x falls in bin i where
e_i-1 < x <= e_i (bin 0 is x <= e_0, bin k is x > e_k-1). Edges are "lower" quantiles, i.e.
observed values, so a bin never starts between two equal values.

>>> edges = quantile_edges(np.array([1.0, 2.0, 3.0, 4.0]), 2)
>>> edges, bin_index(np.array([1.0, 2.0, 2.5, 4.0]), edges)
(array([2.]), array([0, 0, 1, 1]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

MAX_CATEGORIES = 20


def fmt(x: float) -> str:
    """A short label for a number: integers without decimals, others to four digits.

    >>> fmt(3.0), fmt(0.000123456), fmt(1234567.0)
    ('3', '0.0001235', '1.235e+06')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "missing"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.4g}"


def clean(series: pl.Series) -> pl.Series:
    """NaN counts as missing, like null."""
    return series.fill_nan(None) if series.dtype.is_float() else series


def quantiles(
    values: np.ndarray, qs: Sequence[float] | np.ndarray, *, presorted: bool = False
) -> np.ndarray:
    """The "lower" quantiles ``qs`` of ``values`` (observed values), by one partial sort or
    none when the values are ``presorted``.

    >>> quantiles(np.array([4.0, 1.0, 3.0, 2.0]), [0.0, 0.5, 1.0]).tolist()
    [1.0, 2.0, 4.0]
    """
    if values.size == 0:
        return np.array([], dtype=float)
    index = np.floor(np.asarray(qs, dtype=float) * (values.size - 1) + 1e-9).astype(np.int64)
    index = np.clip(index, 0, values.size - 1)
    if presorted:
        return np.asarray(values[index], dtype=float)
    return np.partition(np.asarray(values, dtype=float), np.unique(index))[index]


def quantile_edges(values: np.ndarray, bins: int, *, presorted: bool = False) -> np.ndarray:
    """Inner edges at the 1/bins ... (bins-1)/bins quantiles, deduplicated."""
    if values.size == 0:
        return np.array([], dtype=float)
    return np.unique(quantiles(values, np.arange(1, bins) / bins, presorted=presorted))


def sorted_counts(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """``bin_counts`` of values already sorted ascending, by binary search of the edges.

    >>> sorted_counts(np.array([1.0, 2.0, 3.0, 4.0]), [2.0]).tolist()
    [2, 2]
    """
    ends = np.searchsorted(values, np.asarray(edges, dtype=float), side="right")
    return np.diff(np.concatenate([[0], ends, [values.size]])).astype(np.int64)


def bin_index(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """Each value's right-closed bin among ``edges`` (0 .. len(edges))."""
    return np.searchsorted(np.asarray(edges, dtype=float), values, side="left")


def bin_counts(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """Values per right-closed bin of ``edges`` (len(edges) + 1 counts).

    >>> bin_counts(np.array([1.0, 2.0, 3.0, 4.0]), [2.0]).tolist()
    [2, 2]
    """
    return np.bincount(bin_index(values, edges), minlength=len(edges) + 1).astype(np.int64)


def top_categories(series: pl.Series, top: int = MAX_CATEGORIES) -> tuple[str, ...]:
    """The ``top`` most frequent values as text, ties broken by value so builds repeat.

    >>> top_categories(pl.Series("c", ["b", "a", "b", None, "c", "a"]), 2)
    ('a', 'b')
    """
    text = series.drop_nulls().cast(pl.String)
    counts = text.value_counts().sort(["count", text.name], descending=[True, False])
    return tuple(counts[text.name].head(top).to_list())


def interval_labels(edges: Sequence[float], label: Callable[[float], str] = fmt) -> list[str]:
    """Labels of the right-closed bins that ``edges`` cut the line into.

    >>> interval_labels([1, 5])
    ['≤ 1', '(1, 5]', '> 5']
    """
    if len(edges) == 0:
        return ["all"]
    inner = [f"({label(a)}, {label(b)}]" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [f"≤ {label(edges[0])}", *inner, f"> {label(edges[-1])}"]
