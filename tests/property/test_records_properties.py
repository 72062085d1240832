"""Properties of JSON records flattened to a frame (HTTP sources): nothing is lost."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.sources._records import flatten_record, records_frame

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
keys = st.text(alphabet="abcxyz_", min_size=1, max_size=3)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
records = st.lists(st.dictionaries(keys, values, max_size=5), max_size=12)


def _same(original: Any, stored: Any, dtype: pl.DataType) -> bool:
    if original is None:
        return stored is None
    if dtype == pl.String and not isinstance(original, str):
        return json.loads(stored) == original
    if isinstance(original, list):
        return stored == original  # 1 == 1.0 in a list of floats: same number
    if dtype == pl.Float64:
        return stored == float(original) and float(original) == original
    return stored == original and type(stored) is type(original)


@settings(max_examples=200, deadline=None)
@given(records)
def test_every_leaf_value_survives_flattening(batch: list[dict[str, Any]]) -> None:
    """Each record is one row, and each flattened value reads back exactly (typed or as JSON)."""
    frame = records_frame(batch)
    if not any(flatten_record(r) for r in batch):
        return  # no columns at all
    assert frame.height == len(batch)
    for i, record in enumerate(batch):
        flat = flatten_record(record)
        for name in frame.columns:
            stored = frame[name][i]
            if isinstance(stored, pl.Series):
                stored = stored.to_list()
            assert _same(flat.get(name), stored, frame.schema[name]), (name, flat, stored)
