"""Properties of the contract and the validator over generated data."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.contract import COLUMN_RULES, COLUMN_TYPES, SEVERITIES, ColumnSpec, Contract, Rule
from loopml.core.errors import LoopmlError
from loopml.quality import REASONS, infer_contract, validate

cells = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["2013-01-01", "2013-01-01T10:00:00Z", "yes", "no", "NA", " 7 "]),
)


@st.composite
def text_frames(draw: st.DrawFn) -> pl.DataFrame:
    ncols = draw(st.integers(1, 4))
    nrows = draw(st.integers(1, 25))
    data = {f"c{i}": draw(st.lists(cells, min_size=nrows, max_size=nrows)) for i in range(ncols)}
    return pl.DataFrame(data, schema={k: pl.String for k in data})


@st.composite
def specs(draw: st.DrawFn) -> ColumnSpec:
    kind = draw(st.sampled_from(COLUMN_TYPES))
    lo = draw(st.none() | st.integers(-100, 0))
    hi = draw(st.none() | st.integers(0, 100))
    numeric = kind in ("integer", "float")
    allowed = draw(st.none() | st.lists(st.text(max_size=5), max_size=4).map(tuple))
    text = kind in ("string", "category")
    severity = draw(st.lists(st.tuples(st.sampled_from(COLUMN_RULES), st.sampled_from(SEVERITIES)),
                             max_size=2, unique_by=lambda t: t[0]).map(tuple))
    return ColumnSpec(
        name=draw(st.sampled_from(["c0", "c1", "c2", "c3", "zz"])),
        type=kind,
        nullable=draw(st.booleans()),
        max_null_rate=draw(st.none() | st.floats(0, 1)),
        min=lo if numeric else None,
        max=hi if numeric else None,
        allowed=allowed if kind == "category" else None,
        open=draw(st.booleans()) and kind == "category",
        pattern=draw(st.none() | st.sampled_from(PATTERNS)) if text else None,
        unique=draw(st.booleans()),
        severity=severity,
    )


PATTERNS = ["[a-z]+", r"\d+", ".*", "x{2}"]
rules = st.lists(st.sampled_from([
    Rule(name="present", check="c0 IS NOT NULL"),
    Rule(name="same", check="c0 = c1", severity="warn"),
    Rule(name="ordered", check="c1 >= c2"),
    Rule(name="positive", check="c0 > 0"),
]), max_size=2, unique_by=lambda r: r.name).map(tuple)


@given(text_frames(), st.lists(specs(), min_size=1, max_size=4, unique_by=lambda s: s.name),
       rules)
def test_every_row_is_kept(frame: pl.DataFrame, columns: list[ColumnSpec],
                           checks: tuple[Rule, ...]) -> None:
    """Whatever the data, the contract and its rules, rows in = clean + quarantined, warned
    rows are accepted rows, and only LoopmlError may escape."""
    try:
        contract = Contract(source="p", columns=tuple(columns), rules=checks)
        v = validate(frame, contract)
    except LoopmlError:
        return
    assert v.clean.height + v.quarantined.height == frame.height
    assert v.quarantined["_reasons"].null_count() == 0
    assert 0 <= v.report.warned_rows <= v.report.rows_accepted
    assert 0 <= v.report.quality_score <= 100


@given(text_frames())
def test_inferred_contract_accepts_its_own_data(frame: pl.DataFrame) -> None:
    """Data validated against the contract inferred from it loses no row except duplicates."""
    try:
        contract = infer_contract(frame, source="p")
    except LoopmlError:
        return
    v = validate(frame, contract)
    assert v.report.rows_quarantined == v.report.duplicates


@given(st.lists(specs(), min_size=1, max_size=4, unique_by=lambda s: s.name))
def test_contract_yaml_round_trip(columns: list[ColumnSpec]) -> None:
    """Any contract survives YAML serialisation unchanged."""
    contract = Contract(source="p", columns=tuple(columns))
    assert Contract.from_yaml(contract.to_yaml()) == contract


def _reason_everywhere(work, mask, check):
    """The reason rule evaluated over every row (what validate did before it built messages
    for the failing rows only)."""
    from loopml.quality._validate import _shown, fill

    if not check.shown:
        message = pl.lit(check.template)
    else:
        message = fill(check.template, _shown(work.select(check.shown), check))
    return pl.select(pl.when(mask).then(message).otherwise(None)).to_series().alias(check.id)


def _combine_everywhere(checks, height):
    if not checks:
        return pl.Series(REASONS, [None] * height, dtype=pl.String)
    joined = pl.select(pl.concat_str(checks, separator="; ", ignore_nulls=True)).to_series()
    return joined.alias(REASONS).replace("", None)


@settings(max_examples=200, deadline=None)
@given(text_frames(), st.lists(specs(), min_size=1, max_size=4, unique_by=lambda s: s.name))
def test_reasons_built_for_failing_rows_only_are_the_same(
    frame: pl.DataFrame, columns: list[ColumnSpec]
) -> None:
    """Building reasons only where a check fails changes no output of validate."""
    from loopml.quality import _validate

    contract = Contract(source="p", columns=tuple(columns))
    try:
        fast = validate(frame, contract)
    except LoopmlError:
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_validate, "_reason", _reason_everywhere)
        mp.setattr(_validate, "_combine", _combine_everywhere)
        slow = validate(frame, contract)
    assert fast.report == slow.report
    assert fast.clean.equals(slow.clean) and fast.quarantined.equals(slow.quarantined)
