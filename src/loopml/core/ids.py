"""The one rule for id-like columns: a column whose value names its row rather than describing
it, so a model can only memorise it. Training drops such columns, the profile warns about them
and ``loopml init`` proposes excluding them.

A column is id-like when it has at least ``ID_MIN_ROWS`` values and

- integers: at least ``ID_SHARE`` of its values are distinct and they are numbered densely
  (their span is at most twice their count, like 1..n from any start), or increase with the row
  order, or the column's name reads as an identifier (``customer_id``, ``order_no``); a nearly
  unique integer measurement (a price in cents, a population) stays a feature;
- strings: at least ``ID_SHARE`` of its values are distinct, or nearly all of them look like a
  UUID or a hash (long hexadecimal or base64-like tokens).

>>> import polars as pl
>>> id_like(pl.Series("n", range(1000, 1100)))
'id-like: 100 of 100 values distinct, numbered densely from 1000 to 1099'
>>> id_like(pl.Series("x", [3, 1, 4, 1, 5] * 20)) is None
True
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

ID_SHARE = 0.95  # an integer or text column this unique (of its non-null values) is an id
ID_MIN_ROWS = 20  # fewer non-null values than this say nothing about uniqueness
ID_NAME = re.compile(r"(^|[_\- .])(id|ids|key|uuid|guid|code|no|number|nr)$|id$", re.IGNORECASE)
HASH_SHARE = 0.95  # of the values shaped like a UUID or a hash
HASH = re.compile(
    r"^(\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?"  # UUID
    r"|[0-9a-f]{16,}"  # hex digests: md5, sha1, sha256, 64-bit ids
    r"|(?=[0-9A-Za-z_\-]*[0-9])(?=[0-9A-Za-z_\-]*[A-Za-z])[0-9A-Za-z_\-]{20,})$",  # tokens
    re.IGNORECASE,
)


def id_like(
    series: pl.Series, *, distinct: int | None = None, present: int | None = None
) -> str | None:
    """Why ``series`` is id-like, or None when it is not (the rule in the module docstring).
    ``distinct`` and ``present`` (its non-null values) may be passed when already counted.

    >>> import polars as pl
    >>> import hashlib
    >>> users = [hashlib.md5(str(i % 25).encode()).hexdigest() for i in range(50)]
    >>> id_like(pl.Series("user", users))
    'id-like text: 50 of 50 values look like a UUID or a hash'
    >>> id_like(pl.Series("cents", [7 ** (i % 9) + 1000 * i for i in range(100)])) is None
    True
    """
    dtype = series.dtype
    integer, text = dtype.is_integer(), dtype == _string()
    if not (integer or text):
        return None
    values = series.drop_nulls()
    present = values.len() if present is None else present
    if present < ID_MIN_ROWS:
        return None
    distinct = values.n_unique() if distinct is None else distinct
    found = f"{distinct:,} of {present:,} values distinct"
    if text:
        if distinct >= ID_SHARE * present:
            return f"id-like text: {found}, so a value says nothing about other rows"
        hashed = _hash_count(values)
        if hashed >= HASH_SHARE * present and distinct >= ID_MIN_ROWS:
            return f"id-like text: {hashed:,} of {present:,} values look like a UUID or a hash"
        return None
    if distinct < ID_SHARE * present:
        return None
    low, high = values.min(), values.max()
    span = float(high) - float(low) + 1  # type: ignore[arg-type]
    if span <= 2 * distinct:
        return f"id-like: {found}, numbered densely from {low} to {high}"
    if values.is_sorted():
        return f"id-like: {found}, increasing with the row order from {low} to {high}"
    if ID_NAME.search(series.name):
        return f"id-like: {found}, and its name reads as an identifier"
    return None


def _hash_count(values: pl.Series) -> int:
    """Values shaped like a UUID or a hash (Polars' regex engine has no look-ahead)."""
    distinct = values.unique()
    if distinct.len() > 5000:  # the shape of a sample decides
        distinct = distinct.sample(5000, seed=0)
        share = sum(1 for v in distinct.to_list() if HASH.match(v)) / 5000
        return int(round(share * values.len()))
    shaped = {v for v in distinct.to_list() if HASH.match(v)}
    return int(values.is_in(list(shaped)).sum()) if shaped else 0


def _string() -> pl.DataType:
    import polars as pl

    return pl.String
