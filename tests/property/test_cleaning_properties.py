"""Properties of cleaning over generated batches: no row lost or doubled, cleaning clean data
changes nothing, and how the rows are split into chunks does not change the result."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.core.cleaning import CleaningConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.pipeline._route import route
from loopml.quality import REASONS, ROW_HASH, validate

CONTRACT = Contract(source="s", columns=(
    ColumnSpec(name="n", type="integer", min=-1000, max=10**7),
    ColumnSpec(name="amount", type="float", min=0, max=10**6),
    ColumnSpec(name="city", type="category", allowed=("Paris", "Lyon", "Nice")),
    ColumnSpec(name="ok", type="boolean"),
))
CLEANING = CleaningConfig.model_validate({
    "repair": {"numbers": True, "true_tokens": ["oui"], "false_tokens": ["non"]},
    "categories": {"similarity": 0.75},
    "missing": {"ok": "drop", "amount": {"impute": "median", "value": 12.5}},
    "outliers": {"amount": {"method": "iqr", "q1": 10, "q3": 20, "action": "clip"},
                 "n": {"method": "zscore", "mean": 0, "std": 10, "action": "flag"}},
})
numbers = st.one_of(
    st.none(),
    st.integers(-50, 2_000_000).map(str),
    st.integers(0, 2_000_000).map(lambda i: f"{i:,}"),
    st.integers(0, 999).map(lambda i: f"{i} kg"),
    st.integers(0, 999).map(lambda i: f"€{i}.50"),
    st.sampled_from(["1,2", "abc", "", " 7 ", "-3", "45%", "3.5"]),
)
cities = st.one_of(
    st.none(),
    st.sampled_from(["Paris", " paris", "PARIS", "Pariss", "Lyon", "lyon ", "Lyonn", "Nice",
                     "ＮＩＣＥ", "Nantes", "", "x"]),
)
booleans = st.one_of(st.none(), st.sampled_from(["yes", "no", "oui", "NON", "1", "maybe"]))


@st.composite
def batches(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.lists(st.tuples(numbers, numbers, cities, booleans), min_size=1, max_size=30))
    rows += draw(st.lists(st.sampled_from(rows), max_size=4))  # some exact duplicates
    frame = pl.DataFrame(rows, schema={"n": pl.String, "amount": pl.String, "city": pl.String,
                                       "ok": pl.String}, orient="row")
    return frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_source_row"))


def _route(frame: pl.DataFrame, seen: pl.Series | None = None):
    return route(frame, CONTRACT, seen=seen, cleaning=CLEANING)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_every_row_is_in_exactly_one_place(frame: pl.DataFrame) -> None:
    """With every step on, each row is clean or quarantined (with a reason), never both."""
    routed = _route(frame)
    clean = routed.clean["_source_row"].to_list()
    held = routed.quarantine["_source_row"].to_list()
    assert sorted(clean + held) == list(range(frame.height))
    assert routed.quarantine[REASONS].null_count() == 0
    report = routed.report
    assert report.rows_in == report.rows_accepted + report.rows_quarantined == frame.height


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_cleaning_clean_data_changes_nothing(frame: pl.DataFrame) -> None:
    """The clean rows cleaned again come out the same and the log counts no change (a flagged
    outlier is flagged again: a flag is a warning, not a change)."""
    once = _route(frame).clean.drop(ROW_HASH)
    again = validate(once, CONTRACT, cleaning=CLEANING)
    assert again.report.rows_quarantined == 0
    assert [c for c in again.report.cleaning.changes if not c.action.startswith("flag")] == []
    assert again.clean.equals(once)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_chunks_do_not_change_the_result(frame: pl.DataFrame, cuts: list[int]) -> None:
    """Routing the rows in chunks (each seeing the clean rows before it) gives the same clean
    rows, the same quarantined rows and the same changes per step as one batch."""
    whole = _route(frame)
    bounds = sorted({0, frame.height, *(c for c in cuts if c < frame.height)})
    clean, held = [], []
    seen = pl.Series(ROW_HASH, [], dtype=pl.Int64)
    steps: dict[str, int] = {}
    for lo, hi in zip(bounds, bounds[1:]):
        part = _route(frame.slice(lo, hi - lo), seen=seen)
        clean.append(part.clean)
        held.append(part.quarantine)
        seen = pl.concat([seen, part.clean[ROW_HASH]])
        for step, n in part.report.cleaning.by_step().items():
            steps[step] = steps.get(step, 0) + n
    assert pl.concat(clean).equals(whole.clean)
    assert (sorted(pl.concat(held)["_source_row"].to_list())
            == sorted(whole.quarantine["_source_row"].to_list()))
    assert steps == whole.report.cleaning.by_step()
