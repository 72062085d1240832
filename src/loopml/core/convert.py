"""Converting values to the contract's types: the one converter quality and serve share.

``to_type`` is the rule for each contract type as a Polars expression (for frames, lazy or
eager); ``convert`` applies it to one Series. Values that do not convert become null, so the
caller decides what a failed value means: quality quarantines the row, serve refuses the
request. Text is stripped first; datetimes come out in UTC (text without an offset and naive
datetimes are read as UTC, an offset in the text is honoured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core.contract import polars_dtype

if TYPE_CHECKING:
    import polars as pl

TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0"})
# tried after Polars' own format inference, in this order; the first that parses wins
DATETIME_FORMATS = (
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
# dates are tried in this format first: the common case, parsed several times faster than
# with an inferred format; a value it parses gets the date the later rules give it (the oracle
# in tests/property/test_convert_properties.py checks the rules against the converter before)
ISO_DATE = "%Y-%m-%d"
_LARGEST_WHOLE = 2**62  # floats at least this large are not trusted as exact integers


def convert(series: pl.Series, column_type: str) -> pl.Series:
    """``series`` converted to the Polars type of ``column_type``; failures become null.

    >>> import polars as pl
    >>> convert(pl.Series("n", ["1", " 2 ", "3.0", "x"]), "integer").to_list()
    [1, 2, 3, None]
    >>> convert(pl.Series("b", ["Yes", "n", "maybe"]), "boolean").to_list()
    [True, False, None]
    """
    import polars as pl

    name = series.name
    text_source = series.dtype == pl.String or isinstance(series.dtype, (pl.Categorical, pl.Enum))
    if text_source and column_type in _NUMBER_RULES:
        return _text_number(series.cast(pl.String), _NUMBER_RULES[column_type]).alias(name)
    if text_source and column_type in _TEXT_RULES:
        text = series.cast(pl.String).str.strip_chars()
        return _TEXT_RULES[column_type](text).alias(name)
    frame = series.alias("v").to_frame()
    return frame.select(to_type(pl.col("v"), series.dtype, column_type)).to_series().alias(name)


# ---- text columns, eagerly: each slower rule only sees the values the faster ones left ----
# ``to_type``'s expressions run every alternative over the whole column; these give the same
# values (the tests compare them on random text) while trying an alternative only on the
# values no earlier one parsed. A format Polars infers (format=None) depends on the column's
# first parseable value, so those passes always see the whole column.


def _to_datetime(text: pl.Series, fmt: str | None) -> pl.Series:
    return text.str.to_datetime(format=fmt, strict=False, time_unit="us", time_zone="UTC")


def _fill_rest(text: pl.Series, out: pl.Series, parsers: list[Any]) -> pl.Series:
    """``out`` where it has a value, else the first of ``parsers`` (element-wise rules) that
    parses the value of ``text``; each parser is given only the values still unparsed."""
    todo = out.is_null() & text.is_not_null()
    if not todo.any():
        return out
    where = todo.arg_true()
    rest = text.gather(where)
    got = out.clear(n=rest.len())
    for parse in parsers:
        left = got.is_null()
        if not left.any():
            break
        at = left.arg_true()
        got = got.scatter(at, parse(rest.gather(at)))
    return out.scatter(where, got)


def _text_datetime(text: pl.Series) -> pl.Series:
    parsers = [lambda r, f=fmt: _to_datetime(r, f) for fmt in DATETIME_FORMATS]
    return _fill_rest(text, _to_datetime(text, None), parsers)


def _text_date(text: pl.Series) -> pl.Series:
    out = text.str.to_date(ISO_DATE, strict=False)
    if not (out.is_null() & text.is_not_null()).any():
        return out
    out = out.fill_null(text.str.to_date(strict=False))  # inferred: the whole column
    out = out.fill_null(_to_datetime(text, None).dt.date())
    parsers = [lambda r, f=fmt: _to_datetime(r, f).dt.date() for fmt in DATETIME_FORMATS]
    return _fill_rest(text, out, parsers)


def _text_integer(text: pl.Series) -> pl.Series:
    import polars as pl

    def whole(rest: pl.Series) -> pl.Series:  # "3.0": the float rule, on what is left only
        return rest.to_frame("v").select(_integer(pl.col("v"), pl.String)).to_series()

    return _fill_rest(text, text.cast(pl.Int64, strict=False), [whole])


def _text_float(text: pl.Series) -> pl.Series:
    import polars as pl

    return text.cast(pl.Float64, strict=False).fill_nan(None)


def _text_number(text: pl.Series, rule: Any) -> pl.Series:
    """``rule`` of the stripped text, stripping only the values ``rule`` cannot read as they
    are: a number Polars reads is the same number once stripped (the tests compare this with
    stripping first), and most numbers come without spaces."""
    out = rule(text)
    todo = out.is_null() & text.is_not_null()
    if not todo.any():
        return out
    where = todo.arg_true()
    rest = text.gather(where)
    stripped = rest.str.strip_chars()
    changed = (stripped != rest).arg_true()
    if not changed.len():
        return out
    return out.scatter(where.gather(changed), rule(stripped.gather(changed)))


def to_type(value: pl.Expr, source: Any, column_type: str) -> pl.Expr:
    """``value`` (an expression of Polars type ``source``) as ``column_type``; values that do
    not convert become null. The result is named as the input column. Integers accept whole numbers written as floats ("3.0"), never
    truncate; booleans accept true/false, yes/no, y/n, t/f, 1/0 in any case.

    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": ["2024-01-01T12:00:00+02:00", "2024-01-01 12:00", "no"]})
    >>> frame.select(to_type(pl.col("t"), pl.String, "datetime"))["t"].dt.hour().to_list()
    [10, 12, None]
    """
    import polars as pl

    if column_type not in _RULES:
        raise ValueError(f"unknown column type {column_type!r}")
    if isinstance(source, (pl.Categorical, pl.Enum)):
        value, source = value.cast(pl.String), pl.String
    if source == pl.String:
        value = value.str.strip_chars()
    return _RULES[column_type](value, source).name.keep()  # named as the input column


def _nulls(value: pl.Expr, column_type: str) -> pl.Expr:
    """As many nulls of the type as ``value`` has rows (a bare literal would be one row)."""
    import polars as pl

    empty = pl.lit(None, dtype=polars_dtype(column_type))
    return pl.when(value.is_null()).then(empty).otherwise(empty)


def _float(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    if source == pl.Boolean:
        return value.cast(pl.Float64)
    if source.is_temporal():
        return _nulls(value, "float")
    return value.cast(pl.Float64, strict=False).fill_nan(None)


def _integer(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    if source.is_integer() or source == pl.Boolean:
        return value.cast(pl.Int64, strict=False)
    number = _float(value, source)
    exact = number.is_finite() & (number == number.floor()) & (number.abs() < _LARGEST_WHOLE)
    whole = pl.when(exact).then(number).otherwise(None).cast(pl.Int64, strict=False)
    if source == pl.String:  # digits beyond a float's precision stay exact
        return pl.coalesce(value.cast(pl.Int64, strict=False), whole)
    return whole


def _boolean(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    if source == pl.Boolean:
        return value
    if source.is_numeric():
        return pl.when(value == 1).then(True).when(value == 0).then(False).otherwise(None)
    text = value.cast(pl.String, strict=False).str.to_lowercase()
    return (
        pl.when(text.is_in(sorted(TRUE_TOKENS)))
        .then(True)
        .when(text.is_in(sorted(FALSE_TOKENS)))
        .then(False)
        .otherwise(None)
    )


def _text(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    if source == pl.Boolean:
        return value.cast(pl.String).str.to_lowercase()
    return value.cast(pl.String, strict=False)


def _datetime(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    target = pl.Datetime("us", "UTC")
    if isinstance(source, pl.Datetime):
        if source.time_zone:
            return value.dt.convert_time_zone("UTC").cast(target)
        return value.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if source == pl.Date:
        return value.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if source != pl.String:
        return _nulls(value, "datetime")
    return pl.coalesce(
        value.str.to_datetime(format=fmt, strict=False, time_unit="us", time_zone="UTC")
        for fmt in (None, *DATETIME_FORMATS)
    )


def _date(value: pl.Expr, source: Any) -> pl.Expr:
    import polars as pl

    if source == pl.Date:
        return value
    if isinstance(source, pl.Datetime):
        return value.dt.date()
    if source != pl.String:
        return _nulls(value, "date")
    return pl.coalesce(value.str.to_date(ISO_DATE, strict=False), value.str.to_date(strict=False),
                       _datetime(value, source).dt.date())


_NUMBER_RULES = {"integer": _text_integer, "float": _text_float}
_TEXT_RULES = {"datetime": _text_datetime, "date": _text_date}
_RULES = {
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    "string": _text,
    "category": _text,
    "datetime": _datetime,
    "date": _date,
}
