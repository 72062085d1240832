"""``Lake.as_read`` gives exactly the rows reading the commit back gives, or None."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from loopml.lake import Lake

COLUMNS = {
    "s": (pl.String, st.text(max_size=6)),
    "i": (pl.Int64, st.integers(-(2**63), 2**63 - 1)),
    "i32": (pl.Int32, st.integers(-(2**31), 2**31 - 1)),
    "f": (pl.Float64, st.floats()),
    "b": (pl.Boolean, st.booleans()),
    "d": (pl.Date, st.dates(date(1900, 1, 1), date(2200, 1, 1))),
    "t": (pl.Datetime("us", "UTC"),
          st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(
              lambda d: d.replace(tzinfo=UTC))),
    "u": (pl.UInt32, st.integers(0, 2**32 - 1)),
    "c": (pl.Categorical, st.sampled_from(["x", "y"])),
    "n": (pl.Null, st.none()),
    "l": (pl.List(pl.String), st.lists(st.text(max_size=3), max_size=2)),
}


@st.composite
def batches(draw: st.DrawFn) -> list[pl.DataFrame]:
    out = []
    for k in range(draw(st.integers(1, 4))):
        names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5,
                              unique=True))
        rows = draw(st.integers(1, 8))
        data = {}
        for name in names:
            dtype, values = COLUMNS[name]
            cells = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
            data[name] = pl.Series(name, cells, dtype=dtype)
        out.append(pl.DataFrame(data).with_columns(pl.lit(k, dtype=pl.Int64).alias("_k")))
    return out


@settings(max_examples=60, deadline=None)
@given(batches())
def test_as_read_is_what_reading_back_gives(frames: list[pl.DataFrame]) -> None:
    """Over appends whose columns come and go, a frame ``as_read`` vouches for equals the
    rows read back from its commit: same columns, order, types and values (row order too)."""
    lake = Lake(tempfile.mkdtemp())
    for k, frame in enumerate(frames):
        predicted = lake.as_appended("raw/t", frame)
        try:
            ref = lake.append("raw/t", frame)
        except Exception:  # a type change Delta refuses: nothing to compare
            return
        got = lake.as_read("raw/t", frame, version=ref.version)
        if got is None:
            continue
        # the prediction made before the append: right (then equal) or told apart by schema
        if predicted is not None and list(predicted.schema.items()) == list(got.schema.items()):
            assert_frame_equal(predicted, got, check_exact=True)
        back = lake.scan("raw/t", version=ref.version).filter(pl.col("_k") == k).collect()
        assert_frame_equal(got, back, check_exact=True)


def test_as_read_declines_an_older_version_and_a_nested_type() -> None:
    """Only the latest commit, and plain types, are vouched for."""
    lake = Lake(tempfile.mkdtemp())
    frame = pl.DataFrame({"a": ["x"], "_k": [0]})
    first = lake.append("raw/t", frame)
    assert lake.as_read("raw/t", frame, version=first.version) is not None
    lake.append("raw/t", frame)
    assert lake.as_read("raw/t", frame, version=first.version) is None
    fewer = pl.DataFrame({"_k": [1], "b": [2.5]})  # "a" absent: null, in the table's order
    predicted = lake.as_appended("raw/t", fewer)
    ref = lake.append("raw/t", fewer)
    got = lake.as_read("raw/t", fewer, version=ref.version)
    assert got is not None and got.columns == ["a", "_k", "b"]
    assert got.row(0) == (None, 1, 2.5)
    assert_frame_equal(predicted, got, check_exact=True)  # predicted before the append
    nested = pl.DataFrame({"l": [["x"]]})
    ref = lake.append("raw/u", nested)
    assert lake.as_read("raw/u", nested, version=ref.version) is None
