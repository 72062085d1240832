"""JSON records to a frame: nested objects become ``a.b`` columns, nothing is dropped.

Shared by readers that receive parsed JSON (HTTP APIs now; MQTT payloads and JSON files can
use it too). Polars' own inference is lossy for real-world JSON (``{"a": 3}`` beside
``{"a": {"b": 1}}`` turns the 3 into null), so records are flattened here in Python and each
column takes one type: a column whose values disagree (numbers and text, booleans and numbers)
is kept as text, which the contract's converter reads later.

>>> records_frame([{"id": 1, "geo": {"lat": 1.5}}, {"id": 2, "geo": {"lat": 2.0}}]).columns
['id', 'geo.lat']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def flatten_record(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay lists; an empty object becomes null.

    >>> flatten_record({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}})
    {'a.b': 1, 'a.c.d': [1, 2], 'e': None}
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_record(value, f"{name}."))
        else:
            out[name] = None if isinstance(value, Mapping) else value
    return out


def records_frame(
    records: Sequence[Mapping[str, Any]], *, columns: Sequence[pl.Series] = ()
) -> pl.DataFrame:
    """One row per record, nested objects flattened to ``a.b`` columns, then ``columns``
    (e.g. provenance series of the same length) appended.

    >>> f = records_frame([{"x": 1}, {"x": "a"}, {"y": True}])
    >>> f["x"].to_list(), f["y"].to_list()
    (['1', 'a', None], [None, None, True])
    """
    import polars as pl

    rows = [flatten_record(r) for r in records]
    names = list(dict.fromkeys(name for row in rows for name in row))
    series = [_column(name, [row.get(name) for row in rows]) for name in names]
    taken = set(names)
    series += [s for s in columns if s.name not in taken]
    if not series:
        return pl.DataFrame()
    return pl.DataFrame(series)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return "other"


def _column(name: str, values: list[Any]) -> pl.Series:
    import polars as pl

    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"list"}:
        items = [e for v in values if v is not None for e in v]
        inner = _scalar_type({_kind(e) for e in items if e is not None}, items)
        if inner is not None:  # lists of one scalar kind stay typed lists
            return pl.Series(name, values, dtype=pl.List(inner))
    else:
        dtype = _scalar_type(kinds, values)
        if dtype is not None:
            return pl.Series(name, values, dtype=dtype)
    # mixed kinds, lists of objects or out-of-range numbers: JSON text, which loses nothing
    return pl.Series(name, [_text(v) for v in values], dtype=pl.String)


def _scalar_type(kinds: set[str], values: list[Any]) -> Any:
    """The one dtype that holds these values exactly, or None."""
    import polars as pl

    if not kinds or kinds == {"str"}:
        return pl.String
    if kinds == {"bool"}:
        return pl.Boolean
    ints = [v for v in values if _kind(v) == "int"]
    if kinds == {"int"}:
        return pl.Int64 if all(-(2**63) <= v < 2**63 for v in ints) else None
    if kinds == {"int", "float"} or kinds == {"float"}:
        return pl.Float64 if all(abs(v) <= 2**53 for v in ints) else None  # exact as floats
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
