"""Properties of ``profile``: any Polars frame a user hands it is profiled, or refused with a
``LoopmlError`` (an empty table); the counts it reports add up."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.errors import LoopmlError
from loopml.explore import profile

ROWS = st.integers(1, 40)


def _column(kind: str, rows: int, data: st.DataObject) -> pl.Series:
    """A column of ``rows`` values of one kind, each value possibly missing."""
    def values(strategy):
        return data.draw(st.lists(st.one_of(st.none(), strategy), min_size=rows, max_size=rows))

    if kind == "int":
        return pl.Series(values(st.integers(-(2**40), 2**40)), dtype=pl.Int64)
    if kind == "uint8":
        return pl.Series(values(st.integers(0, 255)), dtype=pl.UInt8)
    if kind == "float":
        return pl.Series(values(st.floats(allow_nan=True, allow_infinity=True, width=64)),
                         dtype=pl.Float64)
    if kind == "bool":
        return pl.Series(values(st.booleans()), dtype=pl.Boolean)
    if kind == "text":
        return pl.Series(values(st.text(max_size=6)), dtype=pl.String)
    if kind == "categorical":
        return pl.Series(values(st.sampled_from(["a", "b", "c"])), dtype=pl.Categorical)
    if kind == "date":
        return pl.Series(values(st.dates(date(1900, 1, 1), date(2200, 1, 1))), dtype=pl.Date)
    if kind == "null":
        return pl.Series([None] * rows, dtype=pl.Null)
    unit = kind.split("-")[1]  # datetimes in ns/us/ms, some with a zone
    moments = st.datetimes(datetime(1970, 1, 2), datetime(2200, 1, 1))
    zone = "UTC" if kind.endswith("tz") else None
    series = pl.Series(values(moments), dtype=pl.Datetime("us"))
    series = series.dt.cast_time_unit(unit)
    return series.dt.replace_time_zone(zone) if zone else series


KINDS = ["int", "uint8", "float", "bool", "text", "categorical", "date", "null",
         "dt-ns", "dt-us", "dt-ms", "dt-ns-tz"]  # fmt: skip


@st.composite
def frames(draw) -> pl.DataFrame:
    rows = draw(ROWS)
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    data = draw(st.data())
    return pl.DataFrame([_column(k, rows, data).alias(f"c{i}_{k}") for i, k in enumerate(kinds)])


@given(frames())
@settings(max_examples=50, deadline=None)
def test_any_frame_is_profiled_and_its_counts_add_up(frame):
    """Every column is profiled; values and missing values add up to the rows; the
    missing-together combinations count every row once; duplicates never exceed rows."""
    p = profile(frame, source="s", target=None, task="clustering")
    assert p.rows == frame.height and [c.name for c in p.columns] == frame.columns
    for column in p.columns:
        assert column.count + column.nulls == frame.height
    if p.missing is not None:
        assert sum(n for _, n in p.missing.combinations) <= frame.height
    assert 0 <= p.duplicates.rows < frame.height


@given(frames(), st.sampled_from(["classification", "regression"]))
@settings(max_examples=30, deadline=None)
def test_any_frame_with_a_target_is_profiled_or_refused_with_a_loopml_error(frame, task):
    """With its first column as the target, a frame is profiled, or the target is refused
    with a LoopmlError (e.g. regression on text), never a dependency's exception."""
    try:
        p = profile(frame, source="s", target=frame.columns[0], task=task)
    except LoopmlError:
        return
    assert p.target == frame.columns[0]


def test_a_single_row_all_null_and_only_categorical_frames_are_profiled():
    """Edge cases by hand: one row, an all-null column, only categoricals, nanoseconds."""
    one = pl.DataFrame({"t": [datetime(2024, 1, 1, tzinfo=UTC)], "x": [1.5]}).with_columns(
        pl.col("t").dt.cast_time_unit("ns"))
    assert profile(one, source="s", target=None, task="clustering").rows == 1
    empty = pl.DataFrame({"n": pl.Series([None] * 5, dtype=pl.Null)})
    assert profile(empty, source="s", target=None, task="clustering").columns[0].nulls == 5
    cats = pl.DataFrame({"a": ["x", "y"] * 30, "b": ["p", "p", "q"] * 20}).cast(pl.Categorical)
    p = profile(cats, source="s", target="a", task="classification")
    assert [m.method for m in p.matrices] == ["cramers_v"]
    # the label model's folds: a feature with no value (or too few to reach every fold)
    few = pl.DataFrame({"y": ["a", "b", "a", "b"], "n": [None, None, None, None],
                        "m": [1.0, None, None, None], "x": [1.0, 2.0, 3.0, 4.0]},
                       schema_overrides={"n": pl.Float64})
    assert profile(few, source="s", target="y", task="classification").rows == 4
