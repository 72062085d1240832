"""SQL values: Polars columns from database values (by the column's SQL type, or by the
values themselves), watermark values as JSON text for the cursor, and row hashes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loopml.core.errors import SourceError

if TYPE_CHECKING:
    import polars as pl

MAX_DECIMAL = 38  # Arrow's and Delta's largest decimal precision


# ---- types ---------------------------------------------------------------------------------


def kind_of_type(sa_type: Any) -> tuple[Any, ...]:
    """How to build a column of this SQLAlchemy type (``("infer",)``: from its values)."""
    from sqlalchemy import types as T

    if isinstance(sa_type, T.Boolean):
        return ("bool",)
    if isinstance(sa_type, T.Float):
        return ("float",)
    if isinstance(sa_type, T.Numeric):
        return _decimal_kind(sa_type.precision, sa_type.scale)
    if isinstance(sa_type, T.Integer):
        return ("int",)
    if isinstance(sa_type, T.DateTime):
        return ("datetime", bool(getattr(sa_type, "timezone", False)))
    if isinstance(sa_type, T.Date):
        return ("date",)
    if isinstance(sa_type, T.Time):
        return ("time",)
    if isinstance(sa_type, T.Interval):
        return ("duration",)
    if isinstance(sa_type, (T.JSON, T.ARRAY)):
        return ("json",)
    if isinstance(sa_type, T._Binary):
        return ("bytes",)
    if isinstance(sa_type, (T.String, T.Uuid, T.Enum)):
        return ("str",)
    return ("infer",)


def _decimal_kind(precision: int | None, scale: int | None) -> tuple[Any, ...]:
    if precision is None or scale is None or precision > MAX_DECIMAL or precision < 1:
        return ("float",)
    if scale == 0 and precision <= 18:
        return ("int",)
    return ("decimal", precision, scale)


def kind_of_values(values: list[Any], description: Any, index: int) -> tuple[Any, ...]:
    """A column's kind from its first non-null value (queries; SQLite's untyped columns)."""
    v = next((x for x in values if x is not None), None)
    if v is None:
        return ("infer",)
    if isinstance(v, bool):
        return ("bool",)
    if isinstance(v, int):
        return ("int",)
    if isinstance(v, float):
        return ("float",)
    if isinstance(v, Decimal):
        d = description[index] if description and index < len(description) else None
        precision, scale = (d[4], d[5]) if d is not None and len(d) > 5 else (None, None)
        if precision is not None and scale is not None and 0 <= scale <= precision:
            return _decimal_kind(precision, scale)
        return ("float",)
    if isinstance(v, datetime):
        return ("datetime", v.tzinfo is not None)
    if isinstance(v, date):
        return ("date",)
    if isinstance(v, time):
        return ("time",)
    if isinstance(v, timedelta):
        return ("duration",)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return ("bytes",)
    if isinstance(v, (dict, list)):
        return ("json",)
    return ("str",)


def series(name: str, values: list[Any], kind: tuple[Any, ...]) -> pl.Series:
    """One column as a Polars series; values that do not fit the kind keep their text."""
    import polars as pl

    tag = kind[0]
    try:
        if tag == "int":
            return pl.Series(name, values, dtype=pl.Int64, strict=True)
        if tag == "float":
            return pl.Series(name, [None if v is None else float(v) for v in values],
                             dtype=pl.Float64)
        if tag == "decimal":
            return pl.Series(name, values, dtype=pl.Decimal(kind[1], kind[2]), strict=True)
        if tag == "bool":
            return pl.Series(name, [None if v is None else bool(v) for v in values],
                             dtype=pl.Boolean)
        if tag == "datetime":
            naive = [None if v is None else _utc_naive(v) for v in values]
            s = pl.Series(name, naive, dtype=pl.Datetime("us"), strict=True)
            return s.dt.replace_time_zone("UTC") if kind[1] else s
        if tag == "date":
            return pl.Series(name, values, dtype=pl.Date, strict=True)
        if tag == "time":
            return pl.Series(name, [None if v is None else v.isoformat() for v in values],
                             dtype=pl.String)
        if tag == "duration":
            return pl.Series(name, [None if v is None else v.total_seconds() for v in values],
                             dtype=pl.Float64)
        if tag == "bytes":
            return pl.Series(name, [None if v is None else bytes(v) for v in values],
                             dtype=pl.Binary)
        if tag == "json":
            return pl.Series(name, [None if v is None or isinstance(v, str)
                                    else json.dumps(v, default=str, sort_keys=True)
                                    if not isinstance(v, str) else v for v in values],
                             dtype=pl.String)
    except (TypeError, ValueError, OverflowError, AttributeError, pl.exceptions.PolarsError):
        pass
    return pl.Series(name, [None if v is None else _text(v) for v in values], dtype=pl.String)


def _utc_naive(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    return str(v)


# ---- cursor values and row hashes --------------------------------------------------------


def encode(v: Any) -> dict[str, str] | None:
    """A watermark value as JSON: its type and its exact text."""
    if v is None:
        return None
    if isinstance(v, bool):
        return {"type": "bool", "value": str(v)}
    if isinstance(v, int):
        return {"type": "int", "value": str(v)}
    if isinstance(v, float):
        return {"type": "float", "value": repr(v)}
    if isinstance(v, Decimal):
        return {"type": "decimal", "value": str(v)}
    if isinstance(v, datetime):
        return {"type": "datetime", "value": v.isoformat()}
    if isinstance(v, date):
        return {"type": "date", "value": v.isoformat()}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"type": "bytes", "value": bytes(v).hex()}
    return {"type": "str", "value": str(v)}


def decode(d: dict[str, str]) -> Any:
    return DECODERS[d["type"]](d["value"])


DECODERS: dict[str, Any] = {
    "bool": lambda s: s == "True",
    "int": int,
    "float": float,
    "decimal": Decimal,
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "bytes": bytes.fromhex,
    "str": str,
}


def stored(cursor: dict[str, Any] | None) -> dict[str, str] | None:
    """The cursor's last watermark value as ``_encode`` gives it (None: none, or NULL)."""
    if cursor is None or cursor.get("watermark") is None:
        return None
    kind, value = cursor.get("type"), cursor["watermark"]
    if kind not in DECODERS or isinstance(value, (dict, list)):
        raise SourceError(
            f"The stored cursor of this SQL source is not one a watermark read understands: "
            f"{str(cursor)[:200]}.",
            hint="Was the source's watermark changed? Give the source a new name in "
            "loopml.yaml to ingest it from the start.",
        )
    return {"type": str(kind), "value": str(value)}


def decode_key(d: dict[str, str] | None) -> tuple[str, str] | None:
    return None if d is None else (d["type"], d["value"])


def row_hashes(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """A 128-bit hash of each row's values (stable across processes and reads)."""
    out = []
    for row in frame.select(columns).iter_rows():
        text = "\x1f".join("\x00" if v is None else f"{type(v).__name__}:{_text(v)}"
                           for v in row)
        out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    return out
