"""Columns to numbers exactly as ToFloat and DateParts compute them, without their per-call
costs: a feature plan's (``_compiled.py``) conversions of Polars columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

SMALL = 32  # frames up to this many rows are computed in Python floats, larger ones in numpy
_NAT = -(2**63)  # numpy's NaT as int64: a null date
_PER_SECOND = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}


def floats(series: pl.Series) -> np.ndarray:
    import numpy as np
    import polars as pl

    if series.dtype == pl.Float64:
        return series.to_numpy()
    if (series.dtype.is_integer() or series.dtype == pl.Boolean) and not series.null_count():
        return series.to_numpy().astype(np.float64)  # round to nearest, as Polars' cast
    return series.cast(pl.Float64).to_numpy()


def float_list(series: pl.Series) -> list[float]:
    """``floats`` as Python floats (``float`` rounds an integer to nearest, as the cast)."""
    import polars as pl

    if not (series.dtype.is_numeric() and not series.dtype.is_decimal()
            or series.dtype == pl.Boolean):
        series = series.cast(pl.Float64)
    nan = float("nan")
    return [nan if v is None else float(v) for v in series.to_list()]


def date_parts(series: pl.Series, parts: list[str], *, as_lists: bool = False) -> Any:
    """DateParts' numbers for one column, from the column's integer ticks (Polars computes
    them with the proleptic Gregorian calendar, as ``_civil`` does); ``as_lists``: one list
    of Python floats per row, computed in Python (for a few rows, cheaper than numpy)."""
    import numpy as np
    import polars as pl

    from loopml.core.convert import to_type

    dtype = series.dtype
    if isinstance(dtype, pl.String):
        parsed = series.to_frame().select(to_type(pl.col(series.name), pl.String, "datetime"))
        series = parsed.to_series()
        dtype = series.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone in (None, "UTC"):
        per_day = 86_400 * _PER_SECOND[dtype.time_unit]
        ticks = series.to_numpy().view(np.int64)
    elif dtype == pl.Date and "hour" not in parts:
        per_day = 1
        ticks = series.to_numpy().view(np.int64)
    else:  # another time zone or type: DateParts' own expressions
        out = _date_parts_polars(series, parts)
        return out.tolist() if as_lists else out
    if as_lists:
        return [_parts_of(t, per_day, parts) for t in ticks.tolist()]
    values = _part_values(ticks, per_day, parts)
    out = np.column_stack([values[p] for p in parts]).astype(np.float64)
    out[ticks == _NAT] = np.nan  # NaT: a null date
    return out


def _parts_of(ticks: int, per_day: int, parts: list[str]) -> list[float]:
    """One value's date parts, by the same arithmetic as ``_date_parts`` (NaN for NaT)."""
    if ticks == _NAT:
        return [float("nan")] * len(parts)
    values = _part_values(ticks, per_day, parts)
    return [float(values[p]) for p in parts]


def _part_values(ticks: Any, per_day: int, parts: list[str]) -> dict[str, Any]:
    """Each date part of ``ticks`` (``per_day`` ticks a day since 1970-01-01), for a numpy
    array or one Python integer."""
    days = ticks // per_day
    year, month, day = _civil(days)
    values = {
        "year": year,
        "month": month,
        "day": day,
        "weekday": (days + 3) % 7 + 1,  # 1970-01-01 was a Thursday; Monday is 1
        "dayofyear": days - _days_from_civil(year, 1, 1) + 1,
    }
    if "hour" in parts:
        values["hour"] = (ticks - days * per_day) // (per_day // 24)
    return values


def _date_parts_polars(series: pl.Series, parts: list[str]) -> np.ndarray:
    import numpy as np
    import polars as pl

    col = pl.col(series.name)
    exprs = {"year": col.dt.year(), "month": col.dt.month(), "day": col.dt.day(),
             "weekday": col.dt.weekday(), "hour": col.dt.hour(), "dayofyear": col.dt.ordinal_day()}
    frame = series.to_frame().select(exprs[p].cast(pl.Float64).alias(p) for p in parts)
    return frame.to_numpy().astype(np.float64)


def _civil(days: Any) -> tuple[Any, Any, Any]:
    """Year, month and day of days since 1970-01-01 (H. Hinnant's ``civil_from_days``), for
    numpy arrays or Python integers."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 - 12 * (mp >= 10)
    return yoe + era * 400 + (month <= 2), month, day


def _days_from_civil(year: Any, month: int, day: int) -> Any:
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
