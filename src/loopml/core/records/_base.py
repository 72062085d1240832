"""What every record module shares: the status levels and plain-data conversion."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

Status = Literal["ok", "warn", "alert"]


def to_plain(record: Any) -> dict[str, Any]:
    """A record as nested plain data (for JSON), skipping frames and fitted objects."""
    import polars as pl

    def keep(value: Any) -> bool:
        return not isinstance(value, pl.DataFrame)

    return asdict(record, dict_factory=lambda kv: {k: v for k, v in kv if keep(v)})


def plain_json(value: Any) -> Any:
    """``value`` as strict JSON data: times in ISO 8601, NaN and infinities as null.

    >>> from datetime import datetime, UTC
    >>> plain_json({"at": datetime(2013, 7, 1, tzinfo=UTC), "score": float("nan"), "n": (1,)})
    {'at': '2013-07-01T00:00:00+00:00', 'score': None, 'n': [1]}
    """
    import math
    from datetime import date

    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain_json(value.item())
    return str(value)
