"""``convert`` of text gives exactly what the expression rules gave before it tried each
alternative only on the values still unparsed (the old converter is kept here as the oracle)."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.contract import COLUMN_TYPES
from loopml.core.convert import DATETIME_FORMATS, convert

_LARGEST_WHOLE = 2**62


def oracle(series: pl.Series, column_type: str) -> pl.Series:
    """The converter as it was: every alternative over the whole column, then coalesce."""
    value: Any = pl.col("v")
    if series.dtype == pl.Categorical:
        value = value.cast(pl.String)
    value = value.str.strip_chars()
    if column_type == "float":
        expr = value.cast(pl.Float64, strict=False).fill_nan(None)
    elif column_type == "integer":
        number = value.cast(pl.Float64, strict=False).fill_nan(None)
        exact = number.is_finite() & (number == number.floor()) & (number.abs() < _LARGEST_WHOLE)
        whole = pl.when(exact).then(number).otherwise(None).cast(pl.Int64, strict=False)
        expr = pl.coalesce(value.cast(pl.Int64, strict=False), whole)
    else:
        stamp = pl.coalesce(
            value.str.to_datetime(format=fmt, strict=False, time_unit="us", time_zone="UTC")
            for fmt in (None, *DATETIME_FORMATS)
        )
        if column_type == "datetime":
            expr = stamp
        else:
            expr = pl.coalesce(value.str.to_date(strict=False), stamp.dt.date())
    frame = series.alias("v").to_frame()
    return frame.select(expr).to_series().alias(series.name)


DATES = [
    "2024-01-02", "2024/01/03", "2024-01-04T23:00:00-02:00", "2024-01-04T23:00:00Z",
    "2024-01-04T23:00:00.123Z", "2024-01-04 23:00:00+0100", "2024-01-04T23:00:00.5+01:00",
    "2024-01-04 23:00:00.25-0300", "2024-01-04T23:00:00.000001", "2024-01-04 23:00:00.9",
    "2024-01-04T23:00:00", "2024-01-04 23:00:00", "2024-01-04T23:00", "2024-01-04 23:00",
    "2024/01/04 23:00:00", "04/01/2024", "01-04-2024", "2024-02-30", "2024-13-01",
    "20240104", "2024-1-4", " 2024-01-05 ", "2024-01-04T25:00:00", "1999-12-31T23:59:59+14:00",
]
NUMBERS = [
    "1", " 2 ", "3.0", "3.5", "-0", "+5", "1e3", "1.5e2", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "4611686018427387904.0", "1e20", "nan",
    "inf", "-inf", "0x10", "007", "1_000", "", " ", "00.000",
]
TEXT = ["x", "yes", "n/a?", "Smith, John", "NaN", "None", "null", "Paris"]

cells = st.one_of(
    st.none(),
    st.sampled_from(DATES + NUMBERS + TEXT),
    st.text(alphabet="0123456789-/:T .+Ze", max_size=26),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats().map(str),
    st.text(max_size=8),
)
kinds = st.sampled_from(["integer", "float", "date", "datetime"])


@settings(max_examples=400, deadline=None)
@given(values=st.lists(cells, max_size=30), column_type=kinds, categorical=st.booleans())
def test_convert_of_text_equals_the_old_converter(values, column_type, categorical):
    """Same values, nulls, type and name as the old converter, for any text (including
    columns whose first value makes Polars infer a format the others do not follow)."""
    series = pl.Series("c", values, dtype=pl.String)
    if categorical:
        series = series.cast(pl.Categorical)
    got, want = convert(series, column_type), oracle(series, column_type)
    assert got.name == want.name and got.dtype == want.dtype
    assert got.to_list() == want.to_list()


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_convert_equals_the_old_converter_on_20k_random_strings(column_type):
    """A large column (several Polars chunks) of random text mixed with valid values."""
    rng = random.Random(6)
    alphabet = "0123456789-/:T .+Ze"
    pool = DATES + NUMBERS + TEXT
    values = [
        None if r < 0.05 else rng.choice(pool) if r < 0.6
        else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        for r in (rng.random() for _ in range(20_000))
    ]
    half = pl.Series("c", values[:10_000], dtype=pl.String)
    series = half.append(pl.Series("c", values[10_000:], dtype=pl.String))  # two chunks
    got = convert(series, column_type)
    if column_type in ("integer", "float", "date", "datetime"):
        assert got.to_list() == oracle(series, column_type).to_list()
    assert got.len() == series.len()


BOOLEANS = ["true", "False", " yes ", "N", "1", "0", "t", "maybe", "", "TRUE", "nope"]


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(DATES + NUMBERS + TEXT + BOOLEANS),
                                 st.text(alphabet="0123456789-/:T .+Ze", max_size=26)),
                       min_size=1, max_size=40),
       column_type=st.sampled_from(["boolean", "date", "datetime"]))
def test_a_long_column_of_few_values_converts_as_value_by_value(values, column_type):
    """A column long enough to be converted by its distinct values (``DISTINCT_ROWS``) gives
    what converting every row gives, in the order the values first came (a format Polars
    infers from the first value is the same)."""
    from loopml.core import convert as module
    from loopml.core.convert import to_type

    rng = random.Random(len(values))
    rows = [values[0], *(rng.choice(values) for _ in range(module.DISTINCT_ROWS))]
    series = pl.Series("c", rows, dtype=pl.String)
    got = convert(series, column_type)
    want = series.to_frame().select(to_type(pl.col("c"), pl.String, column_type)).to_series()
    if column_type != "boolean":
        want = oracle(series, column_type)
    assert got.name == "c" and got.dtype == want.dtype
    assert got.to_list() == want.to_list()
