"""Contract inference on real and generated data."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.core.errors import EmptyDataError, TargetError
from loopml.quality import infer_contract


def test_types_from_text_columns() -> None:
    """Text columns get the narrowest type every value converts to."""
    frame = pl.DataFrame({
        "i": ["1", "2", "30"],
        "f": ["1.5", "2", "-3"],
        "b": ["yes", "no", "yes"],
        "t": ["2013-01-01T05:00:00Z", "2013-01-02T06:00:00Z", "2013-02-01T00:00:00Z"],
        "d": ["2013-01-01", "2013-01-02", "2013-02-01"],
        "s": ["a1", "b2", "c3"],
    })
    types = {c.name: c.type for c in infer_contract(frame, source="x").columns}
    assert types == {"i": "integer", "f": "float", "b": "boolean", "t": "datetime",
                     "d": "date", "s": "string"}


def test_flights_contract(flights_sample: pl.DataFrame) -> None:
    """On real flights: categories for carriers, strings for tail numbers, bounds for delays."""
    c = infer_contract(flights_sample.cast({c: pl.String for c in flights_sample.columns}),
                       source="flights", target="delayed")
    assert c.column("carrier").type == "category" and "UA" in c.column("carrier").allowed
    assert c.column("tailnum").type == "string"
    assert c.column("time_hour").type == "datetime"
    assert c.column("dep_delay").min < 0 < c.column("dep_delay").max
    assert c.column("dep_delay").nullable  # cancelled flights never left
    # the target keeps the words it is written in, so predictions come back in them
    assert c.column("delayed").type == "category" and not c.column("delayed").nullable
    assert c.column("delayed").allowed == ("false", "true")


@pytest.mark.parametrize(
    ("values", "kind", "allowed", "as_feature"),
    [
        (["yes", "no", " yes"], "category", ("no", "yes"), "boolean"),
        (["Y", "N", "N"], "category", ("N", "Y"), "boolean"),
        (["0", "1", "1"], "integer", None, "integer"),
        (["adelie", "gentoo", "adelie", "gentoo"], "category", ("adelie", "gentoo"), "category"),
    ],
)
def test_a_target_keeps_the_users_labels(values, kind, allowed, as_feature) -> None:
    """A target of yes/no words is a category of those words as written (a feature of the
    same words is a boolean); a 0/1 target stays integer, other labels stay text."""
    frame = pl.DataFrame({"label": values, "feature": values})
    c = infer_contract(frame, source="s", target="label")
    assert (c.column("label").type, c.column("label").allowed) == (kind, allowed)
    assert not c.column("label").nullable
    assert c.column("feature").type == as_feature


def test_a_boolean_target_stays_boolean() -> None:
    """A target already held as booleans (e.g. from Parquet) keeps its type: True/False."""
    c = infer_contract(pl.DataFrame({"y": [True, False, None]}), source="s", target="y")
    assert (c.column("y").type, c.column("y").nullable) == ("boolean", False)


def test_bounds_round_outward() -> None:
    """Bounds are the observed range rounded outward to powers of ten."""
    c = infer_contract(pl.DataFrame({"month": [1, 6]}), source="x")
    assert (c.column("month").min, c.column("month").max) == (0, 10)


def test_unknown_target_suggests_columns() -> None:
    """A target that is not a column gives the closest names."""
    with pytest.raises(TargetError) as info:
        infer_contract(pl.DataFrame({"arr_delay": [1]}), source="x", target="arr_dely")
    assert "arr_delay" in info.value.message


def test_empty_frame() -> None:
    """No rows: EmptyDataError."""
    with pytest.raises(EmptyDataError):
        infer_contract(pl.DataFrame({"x": []}, schema={"x": pl.String}), source="x")
