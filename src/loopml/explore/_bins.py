"""Binning of the column statistics and the target relationships: nice equal-width bins for
histograms here; quantile bins and number labels come from ``loopml.core.bins``, which monitor
uses too."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

from loopml.core.bins import bin_index, fmt, interval_labels, quantiles, top_categories

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
    layout = histogram_layout(lo=lo, hi=hi, integer=integer, bins=bins)
    return histogram_labels(layout, histogram_counts(series, layout))


def histogram_layout(*, lo: float, hi: float, integer: bool,
                     bins: int = HISTOGRAM_BINS) -> tuple[float, float, int, bool]:
    """(first edge, width, bins, integer): the bins ``histogram`` counts in, fixed before
    counting so that counts of several parts of a column add up."""
    lo, hi = float(lo), float(hi)
    if integer and hi - lo + 1 <= 32:  # few integer values (days of a month): one bar each
        start, width, n = lo, 1.0, int(hi - lo) + 1
    else:
        width = float(nice_width(hi - lo, bins, integer=integer)) if hi - lo < 1e300 else math.inf
        start = float(np.floor(lo / width)) * width if math.isfinite(width) else math.nan
        n = int((hi - start) // width) + 1 if math.isfinite(start) else 0  # [a, b): hi in last
        if not 0 < n <= 4 * bins:  # near the float limits, or a width below their precision
            start, width, n = lo, (hi / bins - lo / bins) or 1.0, bins
    return start, width, n, integer


def histogram_counts(series: pl.Series, layout: tuple[float, float, int, bool]) -> np.ndarray:
    """The non-null values per bin of ``layout``: below, each bin, above (n + 2 counts)."""
    start, width, n, _ = layout
    values = series.drop_nulls()
    index = ((values - start) / width).floor().clip(-1, n).cast(pl.Int64)
    return np.bincount(index.to_numpy() + 1, minlength=n + 2).astype(np.int64)


def histogram_labels(
    layout: tuple[float, float, int, bool], counts: np.ndarray
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Labelled bins of ``histogram_counts``; the overflow bins only when not empty."""
    start, width, n, integer = layout
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
    return nested_codes(series, kind, bins=bins, top=top, fine_bins=bins, fine_top=top)[0]


def nested_codes(
    series: pl.Series, kind: str, *, bins: int, top: int, fine_bins: int, fine_top: int
) -> tuple[tuple[np.ndarray, list[str]], tuple[np.ndarray, list[str]]]:
    """``codes`` at two resolutions from one partial sort and one search: ``bins`` and
    ``fine_bins`` quantile bins (``fine_bins`` a multiple of ``bins``, so every coarse edge
    is a fine edge), or the ``top`` and ``fine_top`` most frequent categories."""
    missing = series.is_null().to_numpy()
    if kind in ("numeric", "datetime"):
        values = series.to_physical().cast(pl.Float64).to_numpy()
        present = values[~missing]
        raw = quantiles(present, np.arange(1, fine_bins) / fine_bins)
        step = fine_bins // bins
        fine_edges, edges = np.unique(raw), np.unique(raw[step - 1 :: step])
        fine = bin_index(np.where(missing, 0, values), fine_edges)
        coarse = np.concatenate([[0], np.searchsorted(edges, fine_edges, side="right")])[fine]
        levels = [(coarse, _interval_labels(series.dtype, kind, edges)),
                  (fine, _interval_labels(series.dtype, kind, fine_edges))]  # fmt: skip
    else:
        text = series.cast(pl.String)
        kept = [str(k) for k in top_categories(text, fine_top)]
        fine = text.replace_strict(
            kept, list(range(len(kept))), default=len(kept), return_dtype=pl.Int64
        ).to_numpy()
        shown = kept[:top]
        coarse = np.where(fine < len(shown), fine, len(shown))
        levels = []
        for out, names in ((coarse, shown), (fine, kept)):
            if (out[~missing] == len(names)).any():  # a present value outside the kept ones
                names = [*names, "other"]
            levels.append((out, list(names)))
    return tuple(
        (np.where(missing, len(labels), out).astype(np.int64), [*labels, "missing"])
        for out, labels in levels
    )  # type: ignore[return-value]


def _interval_labels(dtype: pl.DataType, kind: str, edges: np.ndarray) -> list[str]:
    if kind != "datetime":
        return interval_labels(edges)
    labels = interval_labels(edges, time_label(dtype, daily=True))
    if len(set(labels)) < len(labels):  # dates alone unless two bins would then share a label
        labels = interval_labels(edges, time_label(dtype))
    return labels


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

