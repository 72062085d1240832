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


class Columns:
    """A few rows (at most ``SMALL``) as Python values, each column converted once however
    many feature plans read it: an ensemble's plans share one per scored frame.

    Built from a Polars frame (``Columns(frame)``), or from Python values already in the
    Polars types ``dtypes`` names (``Columns.of_values``: a request's records, no frame
    built); a column whose type has no Python shortcut is read through a Polars Series, so
    the numbers are those of the frame path.
    """

    __slots__ = ("height", "_frame", "_values", "_dtypes", "_done")
    SMALL = SMALL

    def __init__(self, frame: pl.DataFrame | None, *, height: int | None = None,
                 values: dict[str, list[Any]] | None = None,
                 dtypes: dict[str, Any] | None = None):
        self._frame = frame
        self.height = frame.height if frame is not None else int(height or 0)
        self._values = values
        self._dtypes = dtypes
        self._done: dict[Any, Any] = {}

    @classmethod
    def of_values(cls, values: dict[str, list[Any]], dtypes: dict[str, Any]) -> Columns:
        """Columns of Python values (``None`` for null) held as the Polars types
        ``dtypes``, e.g. a validated request's records."""
        height = len(next(iter(values.values()))) if values else 0
        return cls(None, height=height, values=values, dtypes=dtypes)

    def series(self, name: str) -> pl.Series:
        import polars as pl

        if self._frame is not None:
            return self._frame.get_column(name)
        key = ("series", name)
        if key not in self._done:
            assert self._values is not None and self._dtypes is not None
            self._done[key] = pl.Series(name, self._values[name], dtype=self._dtypes[name])
        return self._done[key]

    def floats(self, name: str) -> list[float]:
        """``float_list`` of the column."""
        key = ("floats", name)
        found = self._done.get(key)
        if found is None:
            simple = self._simple(name, _NUMERIC)
            if simple is None:
                found = float_list(self.series(name))
            else:
                nan = float("nan")
                found = [nan if v is None else float(v) for v in simple]
            self._done[key] = found
        return found

    def texts(self, name: str) -> list[str | None]:
        """The column as text, as ToText casts it (nulls stay None)."""
        import polars as pl

        key = ("texts", name)
        found = self._done.get(key)
        if found is None:
            found = self._simple(name, ("String",))
            if found is None:
                series = self.series(name)
                if not isinstance(series.dtype, pl.String):
                    series = series.cast(pl.String)
                found = series.to_list()
            self._done[key] = found
        return found

    def dates(self, name: str, parts: list[str]) -> list[list[float]]:
        """``date_parts`` of the column, one list per row."""
        key = ("dates", name, tuple(parts))
        found = self._done.get(key)
        if found is None:
            found = self._done[key] = date_parts(self.series(name), parts, as_lists=True)
        return found

    def _simple(self, name: str, kinds: tuple[str, ...]) -> list[Any] | None:
        """The column's Python values when it is held as one of ``kinds`` (Polars type
        names), else None."""
        if self._values is not None:
            assert self._dtypes is not None
            dtype = self._dtypes[name]
            return self._values[name] if _kind(dtype) in kinds else None
        assert self._frame is not None
        series = self._frame.get_column(name)
        return series.to_list() if _kind(series.dtype) in kinds else None


# Polars types whose Python values convert to float as Polars' cast does (``float`` rounds
# an integer to nearest)
_NUMERIC = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
            "Float32", "Float64", "Boolean")


def _kind(dtype: Any) -> str:
    return type(dtype).__name__ if not isinstance(dtype, type) else dtype.__name__
