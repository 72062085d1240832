"""The one converter of values to the contract's types."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from loopml.core.contract import COLUMN_TYPES, polars_dtype
from loopml.core.convert import convert, to_type


@pytest.mark.parametrize(
    ("values", "column_type", "expected"),
    [
        (["1", " 2 ", "3.0", "3.5", "x", None], "integer", [1, 2, 3, None, None, None]),
        ([1.0, 2.5, float("nan"), float("inf")], "integer", [1, None, None, None]),
        (["9223372036854775807"], "integer", [2**63 - 1]),  # beyond a float's precision
        (["1.5", "1e3", "nan", "", "abc"], "float", [1.5, 1000.0, None, None, None]),
        ([True, False], "float", [1.0, 0.0]),
        (["Yes", "n", "T", "0", "maybe"], "boolean", [True, False, True, False, None]),
        ([1, 0, 2], "boolean", [True, False, None]),
        ([True, False], "string", ["true", "false"]),
        ([" Oslo "], "category", ["Oslo"]),
        (["2024-01-02", "2024/01/03", "2024-01-04T23:00:00-02:00", "soon"], "date",
         [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 5), None]),
    ],
)
def test_each_type_converts_and_failures_become_null(values, column_type, expected):
    """Each contract type has one rule; a value that does not convert becomes null."""
    out = convert(pl.Series("c", values), column_type)
    assert out.name == "c" and out.dtype == polars_dtype(column_type)
    assert out.to_list() == expected


def test_datetimes_come_out_in_utc():
    """Offsets in text are honoured, text without one and naive datetimes are read as UTC,
    other zones are converted."""
    text = pl.Series(["2024-01-01T12:00:00+02:00", "2024-01-01 12:00", "2024-01-01T12:00:00Z"])
    assert [d.hour for d in convert(text, "datetime")] == [10, 12, 12]
    naive = pl.Series([datetime(2024, 1, 1, 12)])
    assert convert(naive, "datetime").to_list() == [datetime(2024, 1, 1, 12, tzinfo=UTC)]
    oslo = naive.dt.replace_time_zone("Europe/Oslo")
    assert convert(oslo, "datetime").to_list() == [datetime(2024, 1, 1, 11, tzinfo=UTC)]
    assert convert(pl.Series([1, 2]), "datetime").null_count() == 2


@pytest.mark.parametrize("column_type", COLUMN_TYPES)
def test_expression_form_equals_the_series_form_lazily(column_type):
    """``to_type`` in a lazy frame gives exactly what ``convert`` gives for a Series, with as
    many rows as the input (never a single broadcast null)."""
    values = pl.Series("v", ["1", "2024-01-01", "yes", None, " 7 "])
    lazy = values.to_frame().lazy().select(to_type(pl.col("v"), pl.String, column_type))
    assert lazy.collect()["v"].equals(convert(values, column_type))
    numbers = pl.Series("v", [1, 0, None], dtype=pl.Int64)
    out = numbers.to_frame().select(to_type(pl.col("v"), pl.Int64, column_type))["v"]
    assert out.len() == 3 and out.equals(convert(numbers, column_type))


def test_categorical_text_converts_like_text():
    """A Categorical column converts as its text would."""
    cats = pl.Series(["3", "2024-01-01"], dtype=pl.Categorical)
    assert convert(cats, "integer").to_list() == [3, None]
    assert convert(cats, "date").to_list() == [None, date(2024, 1, 1)]


def test_unknown_type_is_refused():
    """A type the contract does not know is a programming error, said plainly."""
    with pytest.raises(ValueError, match="unknown column type"):
        convert(pl.Series([1]), "decimal")
