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
    try:
        if not kinds or kinds == {"str"}:
            return pl.Series(name, values, dtype=pl.String)
        if kinds == {"bool"}:
            return pl.Series(name, values, dtype=pl.Boolean)
        if kinds == {"int"}:
            return pl.Series(name, values, dtype=pl.Int64, strict=True)
        if kinds <= {"int", "float"}:
            return pl.Series(name, values, dtype=pl.Float64, strict=True)
        if kinds == {"list"}:
            column = pl.Series(name, values, strict=True)
            if not _has_null_type(column.dtype):  # Delta cannot store a Null type
                return column
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        pass  # mixed or out of range: text below, which loses nothing
    return pl.Series(name, [_text(v) for v in values], dtype=pl.String)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _has_null_type(dtype: Any) -> bool:
    import polars as pl

    if dtype == pl.Null:
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None:
        return _has_null_type(inner)
    fields = getattr(dtype, "fields", None)
    return bool(fields) and any(_has_null_type(f.dtype) for f in fields)
