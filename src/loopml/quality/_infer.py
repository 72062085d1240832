"""Inferring a data contract from a frame: types, nullability, sanity bounds, categories."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from loopml.core.contract import PROVENANCE_COLUMNS, ColumnSpec, Contract
from loopml.core.convert import FALSE_TOKENS, TRUE_TOKENS, convert
from loopml.core.errors import EmptyDataError, TargetError, unknown_name

if TYPE_CHECKING:
    import polars as pl

MAX_CATEGORIES = 50


def infer_contract(
    frame: pl.DataFrame,
    *,
    source: str,
    target: str | None = None,
    max_categories: int = MAX_CATEGORIES,
) -> Contract:
    """Infer the contract a frame satisfies, for a person to review and commit.

    Text columns get the narrowest type every value converts to; ``nullable`` is false
    where no value is missing (always false for the target); numeric columns get sanity
    bounds (the observed range rounded outward to a power of ten); text columns with few
    distinct values become categories with the values seen. A target keeps the user's
    labels: text such as ``yes``/``no`` becomes a category of those words, not a boolean.

    >>> import polars as pl
    >>> c = infer_contract(pl.DataFrame({"age": ["31", "47"], "city": ["Oslo", "Oslo"]}),
    ...                    source="people")
    >>> [(s.name, s.type, s.min, s.max, s.allowed) for s in c.columns]
    [('age', 'integer', 0.0, 100.0, None), ('city', 'category', None, None, ('Oslo',))]
    >>> infer_contract(pl.DataFrame({"churn": ["yes", "no"]}), source="s",
    ...                target="churn").column("churn").allowed
    ('no', 'yes')
    """
    columns = [c for c in frame.columns if c not in PROVENANCE_COLUMNS]
    if frame.height == 0 or not columns:
        raise EmptyDataError(
            f"Cannot infer a contract for {source!r} from an empty table "
            f"({frame.height} rows, {len(columns)} columns).",
            hint="Ingest data with at least one row first.",
        )
    if target is not None and target not in columns:
        raise TargetError(
            unknown_name("target column", target, columns),
            hint="Pass --target with one of the listed column names.",
        )
    specs = [
        _infer_column(frame[c], max_categories=max_categories, target=c == target)
        for c in columns
    ]
    return Contract(source=source, columns=tuple(specs))


def _infer_column(series: pl.Series, *, max_categories: int, target: bool = False) -> ColumnSpec:
    """One column's spec. The target is never nullable, and a target of yes/no-like words
    stays text (a category of the words as written) so that predictions come back in the
    user's own labels: a target of ``yes``/``no`` is predicted as ``yes``/``no``."""
    import polars as pl

    name = series.name
    values = series.drop_nulls()
    if values.dtype.is_float():
        values = values.drop_nans()
    nullable = values.len() < series.len() and not target
    if values.len() == 0:
        return ColumnSpec(name=name, type="string", nullable=nullable)
    kind = _infer_type(values)
    if target and kind == "boolean" and values.dtype == pl.String:
        allowed, shares = _frequencies(values.str.strip_chars())
        return ColumnSpec(name=name, type="category", nullable=False, allowed=allowed,
                          frequencies=shares)
    converted = convert(values, kind)
    lo = hi = None
    allowed = shares = None
    if kind in ("integer", "float"):
        lo, hi = _sanity_bounds(float(converted.min()), float(converted.max()))  # type: ignore[arg-type]
    elif kind == "string":
        distinct = converted.n_unique()
        if distinct <= max_categories and distinct <= max(2, values.len() // 2):
            kind = "category"
            allowed, shares = _frequencies(converted)
    rate = None if not nullable else _null_rate_bound(1 - values.len() / series.len())
    return ColumnSpec(name=name, type=kind, nullable=nullable, max_null_rate=rate, min=lo,
                      max=hi, allowed=allowed, frequencies=shares)


def _frequencies(values: pl.Series) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The categories, sorted, and the share of the values each had (4 decimals)."""
    import polars as pl

    counts = values.cast(pl.String).value_counts(name="n").sort(values.name)
    total = values.len()
    return (tuple(counts[values.name].to_list()),
            tuple(round(n / total, 4) for n in counts["n"].to_list()))


def _null_rate_bound(rate: float) -> float:
    """The largest null rate a batch may have when the data had ``rate``: half as much again,
    and at least five points more, rounded up to a hundredth (at most 1).

    >>> _null_rate_bound(0.025), _null_rate_bound(0.4), _null_rate_bound(0.9)
    (0.08, 0.6, 1.0)
    """
    return min(1.0, math.ceil(100 * (rate + max(0.05, rate / 2)) - 1e-9) / 100)


def _infer_type(values: pl.Series) -> str:
    """The narrowest contract type every (non-null) value converts to."""
    import polars as pl

    dtype = values.dtype
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        whole = values.is_finite().all() and (values == values.floor()).all()
        return "integer" if whole and values.abs().max() < 2**53 else "float"  # type: ignore[operator]
    if isinstance(dtype, pl.Decimal):  # SQL NUMERIC/DECIMAL: numbers, not text
        whole = dtype.scale == 0 or (values == values.cast(pl.Int64, strict=False)).all()
        return "integer" if whole else "float"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "string"
    if dtype != pl.String:
        return "string"
    text = values.str.strip_chars()
    lowered = set(text.str.to_lowercase().unique().to_list())
    if lowered <= (TRUE_TOKENS | FALSE_TOKENS) - {"0", "1"} and len(lowered) <= 2:
        return "boolean"
    for kind in ("integer", "float"):
        if convert(text, kind).null_count() == 0:
            return kind
    if text.str.contains(r"^\d{4}-\d{2}-\d{2}").all() or text.str.contains(r"^\d{4}/\d").all():
        if convert(text, "datetime").null_count() == 0:
            has_time = text.str.len_chars().max() > 10  # type: ignore[operator]
            return "datetime" if has_time else "date"
    return "string"


def _sanity_bounds(lo: float, hi: float) -> tuple[float | None, float | None]:
    """The observed range rounded outward to a power of ten: 3..742 -> 0..1000.
    A side too large for a float power of ten has no bound.

    >>> _sanity_bounds(-43.0, 0.93)
    (-100.0, 1.0)
    >>> _sanity_bounds(0.0, 1.5e308)
    (0.0, None)
    """
    return (_outward(lo, down=True), _outward(hi, down=False))


def _outward(x: float, *, down: bool) -> float | None:
    if x == 0 or (x > 0 and down) or (x < 0 and not down):
        return 0.0
    exponent = math.ceil(math.log10(abs(x)))
    if exponent > 307:
        return None
    magnitude = 10.0**exponent
    if magnitude < abs(x):  # log10 rounded down at the edge of float precision
        magnitude *= 10.0
        if math.isinf(magnitude):
            return None
    return -magnitude if x < 0 else magnitude
