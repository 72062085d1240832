"""Converting values to the contract's types: the one converter quality and serve share.

``to_type`` is the rule for each contract type as a Polars expression (for frames, lazy or
eager); ``convert`` applies it to one Series. Values that do not convert become null, so the
caller decides what a failed value means: quality quarantines the row, serve refuses the
request. Text is stripped first; datetimes come out in UTC (text without an offset and naive
datetimes are read as UTC, an offset in the text is honoured). A ``Repair`` (a source's
cleaning settings) widens what converts: numbers written with thousands separators, a currency
or a unit, dates in extra formats, booleans in extra words.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Repair:
    """What converts beyond the usual rules. ``numbers``: text such as ``1,234.5``, ``€3.50``,
    ``USD 3.50``, ``12 kg`` or ``45%`` (read as 45) is read as the number it writes, thousands
    grouped by ``,`` (or ``.`` with ``decimal=","``), a space or ``'``; ``date_formats`` are
    tried before the usual formats; the tokens are lower-case words read as true or false."""

    numbers: bool = False
    decimal: str = "."
    date_formats: tuple[str, ...] = ()
    true_tokens: tuple[str, ...] = ()
    false_tokens: tuple[str, ...] = ()


# a text column of these types with at least this many rows, and at most a quarter of them
# distinct, is converted value by distinct value (in their first order, so that a format
# inferred from the first value is the same) and mapped back: booleans and dates repeat
DISTINCT_ROWS = 10_000
_BY_DISTINCT = frozenset({"boolean", "date", "datetime"})


def convert(series: pl.Series, column_type: str, repair: Repair | None = None) -> pl.Series:
    """``series`` converted to the Polars type of ``column_type``; failures become null.

    >>> import polars as pl
    >>> convert(pl.Series("n", ["1", " 2 ", "3.0", "x"]), "integer").to_list()
    [1, 2, 3, None]
    >>> convert(pl.Series("b", ["Yes", "n", "maybe"]), "boolean").to_list()
    [True, False, None]
    >>> written = pl.Series("n", ["1,234.5", "12 kg", "€3.50"])
    >>> convert(written, "float", Repair(numbers=True)).to_list()
    [1234.5, 12.0, 3.5]
    """
    import polars as pl

    name = series.name
    if (column_type in _BY_DISTINCT and series.dtype == pl.String
            and series.len() >= DISTINCT_ROWS):
        distinct = series.drop_nulls().unique(maintain_order=True)
        if distinct.len() * 4 <= series.len():  # few values, many times: each converted once
            done = convert(distinct, column_type, repair)
            return series.replace_strict(distinct, done, default=None,
                                         return_dtype=done.dtype).alias(name)
    text_source = series.dtype == pl.String or isinstance(series.dtype, (pl.Categorical, pl.Enum))
    if text_source and column_type in _NUMBER_RULES:
        rule = _NUMBER_RULES[column_type]
        out = _text_number(series.cast(pl.String), rule)
        if repair is not None and repair.numbers:
            text = series.cast(pl.String)
            out = _fill_rest(text, out, [lambda r: rule(_number_text(r, repair.decimal))])
        return out.alias(name)
    if text_source and column_type in _TEXT_RULES:
        text = series.cast(pl.String).str.strip_chars()
        out = _TEXT_RULES[column_type](text)
        if repair is not None and repair.date_formats:
            out = _formats(text, repair.date_formats, column_type).fill_null(out)
        return out.alias(name)
    frame = series.alias("v").to_frame()
    value = to_type(pl.col("v"), series.dtype, column_type, repair)
    return frame.select(value).to_series().alias(name)


def _number_pattern(decimal: str) -> str:
    """Sign, currency (a symbol or a three-letter code), the number with its thousands
    grouped in threes, and a unit of at most ten characters (letters, %, ‰, °, µ, ², ³, /)."""
    dot = r"\." if decimal == "." else ","
    group = "," if decimal == "." else r"\."
    digits = (rf"[0-9]{{1,3}}(?:[{group}'\u00a0\u202f ][0-9]{{3}})+(?:{dot}[0-9]+)?"
              rf"|[0-9]+(?:{dot}[0-9]+)?|{dot}[0-9]+")
    return (r"^([+-]?)\s*(?:\p{Sc}|[A-Z]{3}\s)?\s*([+-]?)\s*(" + digits + r")"
            r"\s*(?:%|‰|\p{Sc}|[\p{L}°µ][\p{L}°µ²³/.]{0,9})?$")


def _number_text(text: pl.Series, decimal: str) -> pl.Series:
    """The number each text writes, as plain text ("-1234.5"), or null."""
    parts = text.str.strip_chars().str.extract_groups(_number_pattern(decimal)).struct.unnest()
    first, second, number = parts.get_columns()
    grouping = r"[,'\u00a0\u202f ]" if decimal == "." else r"[.'\u00a0\u202f ]"
    digits = number.str.replace_all(grouping, "")
    if decimal == ",":
        digits = digits.str.replace(",", ".", literal=True)
    return (first + second + digits).alias(text.name)


def _formats(text: pl.Series, formats: tuple[str, ...], column_type: str) -> pl.Series:
    """The first of ``formats`` that parses each text, as ``column_type``."""
    out = None
    for fmt in formats:
        got = _to_datetime(text, fmt)
        if column_type == "date":
            got = got.dt.date()
        out = got if out is None else out.fill_null(got)
    return out


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


def to_type(value: pl.Expr, source: Any, column_type: str,
            repair: Repair | None = None) -> pl.Expr:
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
    if column_type == "boolean" and repair is not None:
        out = _boolean(value, source, repair.true_tokens, repair.false_tokens)
    else:
        out = _RULES[column_type](value, source)
    if repair is not None and source == pl.String:
        if repair.numbers and column_type in _NUMBER_RULES:
            number = value.map_batches(lambda s: _number_text(s, repair.decimal),
                                       return_dtype=pl.String)
            out = pl.coalesce(out, _RULES[column_type](number, source))
        if repair.date_formats and column_type in _TEXT_RULES:
            formats = [value.str.to_datetime(format=f, strict=False, time_unit="us",
                                             time_zone="UTC") for f in repair.date_formats]
            first = pl.coalesce(formats)
            out = pl.coalesce(first.dt.date() if column_type == "date" else first, out)
    return out.name.keep()  # named as the input column


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


def _boolean(value: pl.Expr, source: Any, true: tuple[str, ...] = (),
             false: tuple[str, ...] = ()) -> pl.Expr:
    import polars as pl

    if source == pl.Boolean:
        return value
    if source.is_numeric():
        return pl.when(value == 1).then(True).when(value == 0).then(False).otherwise(None)
    text = value.cast(pl.String, strict=False).str.to_lowercase()
    return (
        pl.when(text.is_in(sorted(TRUE_TOKENS.union(true))))
        .then(True)
        .when(text.is_in(sorted(FALSE_TOKENS.union(false))))
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
