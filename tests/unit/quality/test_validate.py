"""Validation: every row ends up clean or quarantined with a reason; counts add up."""

from __future__ import annotations

import polars as pl

from loopml.core.contract import ColumnSpec, Contract
from loopml.quality import REASONS, infer_contract, validate

CONTRACT = Contract(
    source="people",
    columns=(
        ColumnSpec(name="age", type="integer", nullable=False, min=0, max=150),
        ColumnSpec(name="plan", type="category", allowed=("basic", "pro")),
        ColumnSpec(name="joined", type="date"),
    ),
)


def test_each_rule_quarantines_with_a_reason() -> None:
    """Type, missing, bounds and category violations each give a readable reason."""
    frame = pl.DataFrame({
        "age": ["31", "n/a", None, "200", "40"],
        "plan": ["pro", "basic", "pro", "pro", "gold"],
        "joined": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "yesterday"],
    })
    v = validate(frame, CONTRACT)
    assert v.clean.height == 1 and v.clean["age"].to_list() == [31]
    reasons = v.quarantined[REASONS].to_list()
    assert reasons[0] == "age: 'n/a' is not an integer"
    assert reasons[1] == "age: missing value"
    assert reasons[2] == "age: 200 is above the maximum 150"
    assert "plan: 'gold' is not an allowed category" in reasons[3]
    assert "joined: 'yesterday' is not a date" in reasons[3]
    rules = {(x.column, x.rule): x.rows for x in v.report.violations}
    assert rules[("age", "type")] == 1 and rules[("plan", "allowed")] == 1


def test_quarantine_keeps_original_values() -> None:
    """Quarantined rows keep the values as they arrived, so nothing is lost."""
    v = validate(pl.DataFrame({"age": ["n/a"], "plan": ["pro"], "joined": [None]}), CONTRACT)
    assert v.quarantined["age"].to_list() == ["n/a"]


def test_duplicates_are_quarantined_and_counted() -> None:
    """Exact duplicates after the first go to quarantine and are counted."""
    frame = pl.DataFrame({"age": ["1", "1", "1"], "plan": ["pro"] * 3, "joined": [None] * 3})
    v = validate(frame, CONTRACT)
    assert (v.report.rows_accepted, v.report.duplicates) == (1, 2)
    assert v.quarantined[REASONS].to_list() == ["duplicate of an earlier row"] * 2


def test_a_valid_row_is_not_a_duplicate_of_a_quarantined_one() -> None:
    """A row whose bad date failed to convert looks like a later row with no date at all
    once converted; the later row is valid and is kept, the first is quarantined for its date
    only (and routing the two in separate batches gives the same result)."""
    frame = pl.DataFrame({"age": ["5", "5"], "plan": ["pro", "pro"], "joined": ["soon", None]})
    v = validate(frame, CONTRACT)
    assert v.clean["joined"].to_list() == [None] and v.report.duplicates == 0
    assert v.quarantined[REASONS].to_list() == ["joined: 'soon' is not a date"]


def test_types_are_coerced() -> None:
    """Clean rows carry the contract's types."""
    frame = pl.DataFrame({"age": ["7"], "plan": ["pro"], "joined": ["2021-03-04"]})
    v = validate(frame, CONTRACT)
    assert v.clean.schema["age"] == pl.Int64 and v.clean.schema["joined"] == pl.Date
    assert set(v.report.coerced_columns) == {"age", "joined"}


def test_missing_and_extra_columns() -> None:
    """A missing required column quarantines every row; extra columns are reported."""
    v = validate(pl.DataFrame({"plan": ["pro"], "joined": [None], "zip": ["0150"]}), CONTRACT)
    assert v.report.rows_quarantined == 1
    assert v.quarantined[REASONS].to_list() == ["age: column is missing"]
    assert v.report.extra_columns == ("zip",)


def test_counts_add_up_on_real_flights(flights_sample: pl.DataFrame) -> None:
    """On real flights: rows in = accepted + quarantined; cancelled flights are quarantined."""
    text = flights_sample.cast({c: pl.String for c in flights_sample.columns})
    contract = infer_contract(text.filter(pl.col("delayed").is_not_null()), source="flights",
                              target="delayed")
    v = validate(text, contract)
    r = v.report
    cancelled = flights_sample["delayed"].null_count()
    assert cancelled > 0
    assert r.rows_in == r.rows_accepted + r.rows_quarantined == flights_sample.height
    assert v.quarantined[REASONS].str.contains("delayed: missing value").sum() == cancelled
