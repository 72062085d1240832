"""Arrow types Delta cannot store, and the casts that keep values exact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def delta_compatible(frame: pl.DataFrame, existing: dict[str, Any] | None) -> pl.DataFrame:
    """Cast types Delta cannot store (unsigned, null, categorical, ns/tz times) to ones it can,
    and to the existing table's type where the value is kept exactly."""
    import polars as pl

    casts = {}
    for name, dtype in frame.schema.items():
        target = dtype
        if dtype == pl.Null:
            target = pl.String
        elif dtype in (pl.UInt8, pl.UInt16):
            target = pl.Int32
        elif dtype in (pl.UInt32, pl.UInt64):
            target = pl.Int64
        elif isinstance(dtype, (pl.Categorical, pl.Enum)):
            target = pl.String
        elif isinstance(dtype, pl.Datetime):
            target = pl.Datetime("us", "UTC" if dtype.time_zone else None)
        elif dtype == pl.Time:
            target = pl.String
        if existing and name in existing and existing[name] != target:
            wanted = existing[name]
            if _widens(target, wanted):
                target = wanted
        if target != dtype:
            casts[name] = target
    if not casts:
        return frame
    out = frame
    for name, target in casts.items():
        col = pl.col(name)
        if isinstance(target, pl.Datetime) and target.time_zone:
            col = col.dt.convert_time_zone("UTC")
        out = out.with_columns(col.cast(target))
    return out


def _widens(source: Any, target: Any) -> bool:
    import polars as pl

    ints = [pl.Int8, pl.Int16, pl.Int32, pl.Int64]
    if source in ints and (target in ints[ints.index(source) :] or target == pl.Float64):
        return True
    if source == pl.Float32 and target == pl.Float64:
        return True
    return source == pl.Null


def aligned(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame | None:
    """``frame`` cast as appending it to a table of ``schema`` casts it, in the table's column
    order, the columns it lacks null; None unless every type is plain and as the table's."""
    import polars as pl

    data = delta_compatible(frame, schema or None)
    if any(schema.get(n) != t for n, t in data.schema.items()) or not all(
        plain_type(t) for t in schema.values()
    ):
        return None
    return data.select(
        pl.col(n) if n in data.columns else pl.lit(None, dtype=t).alias(n)
        for n, t in schema.items()
    )


def plain_type(dtype: Any) -> bool:
    """A flat type whose values a Delta round trip keeps exactly (and in the same type)."""
    import polars as pl

    plain = (pl.String, pl.Binary, pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64,
             pl.Float32, pl.Float64, pl.Date)
    if isinstance(dtype, pl.Datetime):
        return dtype.time_unit == "us" and dtype.time_zone in (None, "UTC")
    return dtype in plain


def polars_schema(dt: Any) -> dict[str, Any]:
    """The Polars types of a Delta table's columns, in order (no pandas: an empty batch of
    ``pa.nulls``, which ``pa.Schema.empty_table`` would import pandas for)."""
    import polars as pl
    import pyarrow as pa

    schema = pa.schema(dt.schema().to_arrow())  # delta-rs returns arro3
    return dict(pl.DataFrame(empty_batch(schema)).schema)


def empty_batch(schema: Any) -> Any:
    """A pyarrow batch of no rows with ``schema``, without the pandas import that
    ``pa.Schema.empty_table`` makes."""
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)
