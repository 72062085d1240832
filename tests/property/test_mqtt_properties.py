"""Properties of MQTT payload parsing: every message becomes a row or a rejected row, never
an exception, whatever the payloads and however their types disagree."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from loopml.core.config import MqttSource
from loopml.sources._mqtt import _chunk, _Message

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),  # beyond Int64 too
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=6,
)
objects = st.dictionaries(
    st.sampled_from(["id", "x", "y", "n", "_source_row"]), values, max_size=4
)
payloads = st.one_of(
    objects.map(lambda o: json.dumps(o).encode()),
    values.map(lambda v: json.dumps(v).encode()),  # JSON, but maybe not an object
    st.binary(max_size=30),
)

CONFIG = MqttSource(name="s", kind="mqtt", topics=("t/#",))
KEYED = MqttSource(name="s", kind="mqtt", topics=("t/#",), message_key="id")


def _messages(raw: list[bytes]) -> list[_Message]:
    return [_Message(1, i + 1, 1, f"t/{i % 3}", p) for i, p in enumerate(raw)]


@given(st.lists(payloads, max_size=20), st.integers(0, 10**6), st.booleans())
def test_every_message_is_a_row_or_rejected(raw: list[bytes], start: int, keyed: bool) -> None:
    """Rows + rejected == messages; numbers run on from the cursor without gaps or repeats."""
    config = KEYED if keyed else CONFIG
    chunk = _chunk(config, _messages(raw), start, SimpleNamespace(client_id="c"))
    rejected = chunk.rejected.height if chunk.rejected is not None else 0
    assert chunk.frame.height + rejected == len(raw)
    numbers = chunk.frame["_source_row"].to_list()
    if chunk.rejected is not None:
        numbers += chunk.rejected["_source_row"].to_list()
        assert chunk.rejected["_reasons"].null_count() == 0
    assert sorted(numbers) == list(range(start + 1, start + len(raw) + 1))
    assert chunk.cursor == {"client_id": "c", "messages": start + len(raw)}
    if keyed:
        assert "id" in chunk.frame.columns and chunk.frame["id"].null_count() == 0


@given(st.lists(objects, min_size=1, max_size=10))
def test_json_objects_are_never_rejected_without_a_key(rows: list[dict[str, object]]) -> None:
    """Any JSON object is a row; a column whose types disagree becomes JSON text."""
    chunk = _chunk(CONFIG, _messages([json.dumps(r).encode() for r in rows]), 0,
                   SimpleNamespace(client_id="c"))
    assert chunk.rejected is None
    assert chunk.frame.height == len(rows)
