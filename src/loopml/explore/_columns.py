"""Per-column statistics and distributions, computed with Polars on the whole frame.

All scalar statistics of all columns come from one ``select`` so Polars runs them in parallel;
the distributions (histograms, top values) are one ``value_counts`` or bincount per column.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loopml.explore._bins import HISTOGRAM_BINS, histogram

TOP_VALUES = 20
QUANTILES = {"q01": 0.01, "q25": 0.25, "median": 0.5, "q75": 0.75, "q99": 0.99}
TEXT_MIN_LENGTH = 40  # strings longer than this on average, and mostly distinct, are free text


def column_kind(series: pl.Series) -> str:
    """numeric, boolean, datetime, categorical or text."""
    dtype = series.dtype
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype.is_temporal() and dtype in (pl.Date, pl.Datetime):
        return "datetime"
    if dtype == pl.String:
        values = series.drop_nulls()
        if values.len() and values.n_unique() > 0.5 * values.len():
            if (values.str.len_chars().mean() or 0) > TEXT_MIN_LENGTH:
                return "text"
    return "categorical"


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Floats' NaN and infinities count as missing; datetimes count in microseconds;
    durations become seconds; categoricals, times and any other type are profiled as text."""
    out = []
    for name, dtype in frame.schema.items():
        col = frame[name]
        if dtype.is_float():
            if col.is_nan().any():  # a copy only when needed: a profile prepares twice
                col = col.fill_nan(None)
            if col.is_infinite().any():  # would make every moment infinite or undefined
                col = col.set(col.is_infinite(), None)
        elif isinstance(dtype, pl.Datetime) and dtype.time_unit != "us":
            col = col.cast(pl.Datetime("us", dtype.time_zone))  # pandas makes nanoseconds
        elif dtype == pl.Duration:
            col = col.dt.total_microseconds().cast(pl.Float64) / 1e6
        elif isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Time:
            col = col.cast(pl.String)
        elif not (dtype.is_numeric() or dtype in (pl.Boolean, pl.String, pl.Date, pl.Datetime)):
            # nested, binary and object values: their printed form
            col = pl.Series(name, [_text(v) for v in col], pl.String)
        out.append(col)
    return pl.DataFrame(out)


def labelled_rows(data: pl.DataFrame, target: str) -> pl.DataFrame:
    """The rows of ``data`` with a label: ``data`` itself when every row has one (a filter
    would copy every column, gigabytes on a large table)."""
    if data[target].null_count() == 0:
        return data
    return data.filter(pl.col(target).is_not_null())


def sample_rows(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """``n`` rows of ``frame`` drawn at random without replacement (``frame`` itself when it
    has no more), kept in their order: gathered in increasing position, which reads each
    column front to back (Polars' ``sample`` gathers in random order: three to five times
    slower on flights).

    >>> frame = pl.DataFrame({"x": range(10)})
    >>> rows = sample_rows(frame, 4, seed=0)["x"].to_list()
    >>> len(rows), rows == sorted(rows), rows == sample_rows(frame, 4, seed=0)["x"].to_list()
    (4, True, True)
    """
    import numpy as np

    if frame.height <= n:
        return frame
    chosen = np.random.default_rng(seed).choice(frame.height, size=n, replace=False)
    return frame[np.sort(chosen)]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value.to_list() if isinstance(value, pl.Series) else value)


def scalar_stats(frame: pl.DataFrame, kinds: dict[str, str]) -> dict[str, dict[str, Any]]:
    """count, nulls, distinct and the kind's scalar statistics of every column, in one pass."""
    exprs: list[pl.Expr] = []
    for name, kind in kinds.items():
        c = pl.col(name)
        exprs += [c.count().alias(f"{name}\0count"), c.null_count().alias(f"{name}\0nulls")]
        exprs.append(c.n_unique().alias(f"{name}\0distinct"))
        if kind == "numeric":
            x = c.cast(pl.Float64)
            exprs += [
                x.mean().alias(f"{name}\0mean"),
                x.std().alias(f"{name}\0std"),
                x.min().alias(f"{name}\0min"),
                # one selection for the five quantiles: five separate ones cost 4x as much
                x.quantile(list(QUANTILES.values()), "linear").alias(f"{name}\0quantiles"),
                x.max().alias(f"{name}\0max"),
                (x == 0).sum().alias(f"{name}\0zeros"),
                (x < 0).sum().alias(f"{name}\0negatives"),
                x.skew().alias(f"{name}\0skew"),
            ]
        elif kind == "datetime":
            t = c.dt.epoch("ms").cast(pl.Float64) / 1000  # epoch seconds, whatever the unit
            exprs += [t.min().alias(f"{name}\0min"), t.max().alias(f"{name}\0max")]
        elif kind == "boolean":
            exprs.append(c.cast(pl.Float64).mean().alias(f"{name}\0true_share"))
        elif kind == "text":
            n = c.str.len_chars().cast(pl.Float64)
            exprs += [
                n.mean().alias(f"{name}\0mean_length"),
                n.min().alias(f"{name}\0min_length"),
                n.max().alias(f"{name}\0max_length"),
            ]
    row = frame.select(exprs).row(0, named=True) if exprs else {}
    out: dict[str, dict[str, Any]] = {name: {} for name in kinds}
    for key, value in list(row.items()):
        name, _, stat = key.partition("\0")
        if stat == "quantiles":
            row.update({f"{name}\0{q}": v for q, v in zip(QUANTILES, value or (), strict=False)})
    for key, value in row.items():
        name, _, stat = key.partition("\0")
        if stat == "quantiles":
            continue
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            out[name][stat] = value
    return out


def numeric_histogram(
    series: pl.Series, stats: dict[str, float]
) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Round equal-width bins; a long-tailed column is binned over its 1st-99th percentile
    with the tails in two overflow bins, so the bulk of the values stays readable."""
    if "min" not in stats:
        return None
    lo, hi = stats["min"], stats["max"]
    q01, q99 = stats.get("q01", lo), stats.get("q99", hi)
    if q99 > q01 and (hi - lo) > 4 * (q99 - q01):
        lo, hi = q01, q99
    integer = series.dtype.is_integer()
    return histogram(series, lo=lo, hi=hi, integer=integer, bins=HISTOGRAM_BINS)


def time_histogram(series: pl.Series) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Counts per calendar period (minute ... year), the period chosen for at most ~40 bars;
    empty periods are shown as zero."""
    values = series.drop_nulls()
    if values.len() == 0:
        return None
    moments = values.cast(pl.Datetime("us")) if series.dtype == pl.Date else values
    lo, hi = moments.min(), moments.max()
    every = time_period((hi - lo).total_seconds())  # type: ignore[operator]
    return time_bars(period_counts(series, every), every)


def time_period(span_s: float) -> str:
    """The calendar period giving at most ~40 bars over ``span_s`` seconds."""
    periods = [
        ("1m", 60), ("15m", 900), ("1h", 3600), ("6h", 21600), ("1d", 86400),
        ("1w", 604800), ("1mo", 2629800), ("3mo", 7889400), ("1y", 31557600),
    ]  # fmt: skip
    return next((p for p, s in periods if span_s / s <= 40), "10y")


def period_counts(series: pl.Series, every: str) -> pl.DataFrame:
    """Non-null values per period starting at ``t`` (columns t, n); the counts of several
    parts of a column add up."""
    values = series.drop_nulls()
    moments = values.cast(pl.Datetime("us")) if series.dtype == pl.Date else values
    truncated = moments.dt.truncate(every)
    return truncated.value_counts().rename({truncated.name: "t", "count": "n"})


def time_bars(counts: pl.DataFrame, every: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """``period_counts`` as bars, every period from the first to the last, empty ones zero."""
    if counts.height == 0:
        return None
    counts = counts.group_by("t").agg(pl.col("n").sum())
    grid = pl.datetime_range(
        counts["t"].min(), counts["t"].max(), every, eager=True,
        time_zone=counts["t"].dtype.time_zone,  # type: ignore[union-attr]
    ).alias("t")
    filled = grid.to_frame().join(counts, on="t", how="left").fill_null(0)
    short = every.endswith(("d", "w", "mo", "y"))
    labels = [t.strftime("%Y-%m-%d" if short else "%Y-%m-%d %H:%M") for t in filled["t"]]
    return tuple(labels), tuple(int(n) for n in filled["n"])


def top_values(
    series: pl.Series, *, top: int = TOP_VALUES
) -> tuple[tuple[tuple[str, ...], tuple[int, ...]], float]:
    """The ``top`` most frequent values with counts, and the share of non-null rows in "other"."""
    values = series.drop_nulls().cast(pl.String)
    counts = values.value_counts(sort=True)
    head = counts.head(top)
    labels = tuple(str(v) for v in head[values.name])
    shown = tuple(int(n) for n in head["count"])
    other = 1 - sum(shown) / values.len() if values.len() else 0.0
    return (labels, shown), max(0.0, other)


def describe(series: pl.Series, kind: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The distribution fields of one column: stats (floats), histogram and top values."""
    plain = {k: float(v) for k, v in stats.items() if k not in ("count", "nulls", "distinct")}
    out: dict[str, Any] = {"stats": plain, "histogram": None, "top_values": None}
    if kind == "numeric":
        out["histogram"] = numeric_histogram(series, plain)
        plain.pop("q01", None), plain.pop("q99", None)
    elif kind == "datetime":
        out["histogram"] = time_histogram(series)
        if "min" in plain:  # min and max are epoch seconds (UTC)
            plain["span_days"] = (plain["max"] - plain["min"]) / 86400
    elif kind in ("categorical", "boolean", "text"):
        top = TOP_VALUES if kind != "text" else 10
        out["top_values"], other = top_values(series, top=top)
        counts = out["top_values"][1]
        total = stats["count"] or 1
        plain["top_share"] = counts[0] / total if counts else 0.0
        plain["other_share"] = other
    return out
