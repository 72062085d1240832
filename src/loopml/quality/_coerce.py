"""Converting a column to its contract type; values that do not convert become null."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0"})
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)


def coerce(series: pl.Series, column_type: str) -> pl.Series:
    """``series`` converted to the Polars type of ``column_type``; failures become null.

    >>> import polars as pl
    >>> coerce(pl.Series(["1", " 2 ", "3.0", "x"]), "integer").to_list()
    [1, 2, 3, None]
    """
    import polars as pl

    s = series
    if s.dtype == pl.String:
        s = s.str.strip_chars()
    if column_type == "integer":
        return _to_integer(s)
    if column_type == "float":
        return _to_float(s)
    if column_type == "boolean":
        return _to_boolean(s)
    if column_type in ("string", "category"):
        if s.dtype == pl.Boolean:
            return s.cast(pl.String).str.to_lowercase()
        return s.cast(pl.String)
    if column_type == "datetime":
        return _to_datetime(s)
    if column_type == "date":
        return _to_date(s)
    raise ValueError(f"unknown column type {column_type!r}")


def _to_float(s: pl.Series) -> pl.Series:
    import polars as pl

    if s.dtype == pl.Boolean:
        return s.cast(pl.Float64)
    if s.dtype.is_temporal():
        return pl.Series(s.name, [None] * s.len(), dtype=pl.Float64)
    out = s.cast(pl.Float64, strict=False)
    return out.fill_nan(None) if out.dtype == pl.Float64 else out


def _to_integer(s: pl.Series) -> pl.Series:
    import polars as pl

    if s.dtype.is_integer():
        return s.cast(pl.Int64, strict=False)
    if s.dtype == pl.Boolean:
        return s.cast(pl.Int64)
    direct = s.cast(pl.Int64, strict=False) if s.dtype == pl.String else None
    f = _to_float(s)
    whole = pl.select(
        pl.when(f.is_finite() & (f == f.floor()) & (f.abs() < 2**62)).then(f).otherwise(None)
    ).to_series()
    from_float = whole.cast(pl.Int64, strict=False)
    out = from_float if direct is None else pl.select(pl.coalesce(direct, from_float)).to_series()
    return out.alias(s.name)


def _to_boolean(s: pl.Series) -> pl.Series:
    import polars as pl

    if s.dtype == pl.Boolean:
        return s
    if s.dtype.is_numeric():
        return pl.select(
            pl.when(s == 1).then(True).when(s == 0).then(False).otherwise(None)
        ).to_series().alias(s.name)
    text = s.cast(pl.String, strict=False).str.to_lowercase()
    return pl.select(
        pl.when(text.is_in(list(TRUE_TOKENS)))
        .then(True)
        .when(text.is_in(list(FALSE_TOKENS)))
        .then(False)
        .otherwise(None)
    ).to_series().alias(s.name)


def _to_datetime(s: pl.Series) -> pl.Series:
    import polars as pl

    target = pl.Datetime("us", "UTC")
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone:
            return s.dt.convert_time_zone("UTC").cast(target)
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if s.dtype != pl.String:
        return pl.Series(s.name, [None] * s.len(), dtype=target)
    parsed = [_utc(_try_parse(s, None))]
    for fmt in _DATETIME_FORMATS:
        parsed.append(_utc(_try_parse(s, fmt)))
    found = [p for p in parsed if p is not None]
    if not found:
        return pl.Series(s.name, [None] * s.len(), dtype=target)
    return pl.select(pl.coalesce(found)).to_series().alias(s.name)


def _try_parse(s: pl.Series, fmt: str | None) -> pl.Series | None:
    import polars as pl

    try:
        return s.str.to_datetime(format=fmt, strict=False, time_unit="us")
    except (pl.exceptions.PolarsError, ValueError):
        return None


def _utc(s: pl.Series | None) -> pl.Series | None:
    import polars as pl

    if s is None:
        return None
    if s.dtype.time_zone:  # type: ignore[attr-defined]
        return s.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    return s.dt.replace_time_zone("UTC")


def _to_date(s: pl.Series) -> pl.Series:
    import polars as pl

    if s.dtype == pl.Date:
        return s
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.date()
    if s.dtype != pl.String:
        return pl.Series(s.name, [None] * s.len(), dtype=pl.Date)
    as_date = s.str.to_date(strict=False) if s.len() else s.cast(pl.Date)
    rest = _to_datetime(s).dt.date()
    return pl.select(pl.coalesce(as_date, rest)).to_series().alias(s.name)
