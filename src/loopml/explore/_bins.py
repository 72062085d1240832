"""Binning of the column statistics and the target relationships: nice equal-width bins for
histograms here; quantile bins and number labels come from ``loopml.core.bins``, which monitor
uses too."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

from loopml.core.bins import bin_index, fmt, interval_labels, quantile_edges, top_categories

HISTOGRAM_BINS = 25


def nice_width(span: float, bins: int, *, integer: bool) -> float:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) giving about ``bins`` bins."""
    raw = span / bins if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    width = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return max(1.0, math.ceil(width)) if integer else width


def histogram(
    series: pl.Series, *, lo: float, hi: float, integer: bool, bins: int = HISTOGRAM_BINS
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Counts of the non-null values of ``series`` in round equal-width bins over [lo, hi].

    Values below ``lo`` or above ``hi`` (the tails of a skewed column) are counted in two
    overflow bins labelled ``< lo`` and ``> hi``.
    """
    values = series.drop_nulls()
    if integer and hi - lo + 1 <= 32:  # e.g. days of a month  # few integer values: one bar per value
        start, width, n = lo, 1.0, int(hi - lo) + 1
    else:
        width = nice_width(hi - lo, bins, integer=integer)
        start = math.floor(lo / width) * width
        n = math.floor((hi - start) / width) + 1  # bins are [a, b): hi is inside the last
    index = ((values - start) / width).floor().clip(-1, n).cast(pl.Int64)
    counts = np.bincount(index.to_numpy() + 1, minlength=n + 2)
    labels = [
        fmt(start + i * width)
        if integer and width == 1
        else f"[{fmt(start + i * width)}, {fmt(start + (i + 1) * width)})"
        for i in range(n)
    ]
    under, inner, over = int(counts[0]), [int(c) for c in counts[1 : n + 1]], int(counts[n + 1])
    if under:
        labels, inner = [f"< {fmt(start)}"] + labels, [under] + inner
    if over:
        labels, inner = labels + [f"≥ {fmt(start + n * width)}"], inner + [over]
    return tuple(labels), tuple(inner)


def codes(
    series: pl.Series, kind: str, *, bins: int, top: int
) -> tuple[np.ndarray, list[str]]:
    """Each row's bin (numeric: quantile bins; otherwise: top categories, then "other"), with
    missing values in a last "missing" bin. Returns (codes, labels)."""
    missing = series.is_null().to_numpy()
    if kind in ("numeric", "datetime"):
        values = series.to_physical().cast(pl.Float64).to_numpy()
        edges = quantile_edges(values[~missing], bins)
        if kind == "datetime":  # dates alone unless two bins would then share a label
            labels = interval_labels(edges, time_label(series.dtype, daily=True))
            if len(set(labels)) < len(labels):
                labels = interval_labels(edges, time_label(series.dtype))
        else:
            labels = interval_labels(edges)
        out = bin_index(np.where(missing, 0, values), edges)
    else:
        text = series.cast(pl.String)
        kept = list(top_categories(text, top))
        labels = [str(k) for k in kept]
        found = text.replace_strict(
            kept, list(range(len(kept))), default=len(kept), return_dtype=pl.Int64
        )
        out = found.to_numpy()
        if (out[~missing] == len(kept)).any():  # a present value outside the kept ones
            labels.append("other")
    out = np.where(missing, len(labels), out).astype(np.int64)
    return out, [*labels, "missing"]


def time_label(dtype: pl.DataType, *, daily: bool = False) -> Callable[[float], str]:
    """A formatter turning the physical value of a Date/Datetime ``dtype`` into a date text;
    ``daily`` drops the time of day."""
    from datetime import UTC, datetime, timedelta

    if dtype == pl.Date:
        return lambda days: str((datetime(1970, 1, 1) + timedelta(days=days)).date())
    per_second = {"ns": 1e9, "us": 1e6, "ms": 1e3}[getattr(dtype, "time_unit", None) or "us"]

    def label(value: float) -> str:
        moment = datetime.fromtimestamp(value / per_second, tz=UTC)
        whole_day = daily or not (moment.hour or moment.minute)
        return moment.strftime("%Y-%m-%d" if whole_day else "%Y-%m-%d %H:%M")

    return label

