"""Validating a frame against its contract: clean rows out, bad rows to quarantine with reasons.

Every input row ends up in exactly one of the two outputs; duplicates of an earlier row are
quarantined too (reason "duplicate"), so ``rows_in == rows_accepted + rows_quarantined``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.contract import PROVENANCE_COLUMNS, ColumnSpec, Contract, polars_dtype
from loopml.core.convert import convert
from loopml.core.records import Validated, ValidationReport, Violation

if TYPE_CHECKING:
    import polars as pl

REASONS = "_reasons"
ROW_HASH = "_row_hash"  # a hash of a clean row's contract columns: duplicates of earlier rows
_SEED = 0x6C6F6F70  # "loop"
_ARTICLE = {"integer": "an integer", "float": "a number", "boolean": "a boolean",
            "datetime": "a date-time", "date": "a date"}


def validate(frame: pl.DataFrame, contract: Contract, *, drop_duplicates: bool = True) -> Validated:
    """Split ``frame`` into clean rows (typed as the contract says) and quarantined rows.

    >>> import polars as pl
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> c = Contract(source="s", columns=(ColumnSpec(name="age", type="integer", min=0, max=150),))
    >>> v = validate(pl.DataFrame({"age": ["31", "n/a", "-4", "31"]}), c)
    >>> v.clean["age"].to_list(), v.quarantined["_reasons"].to_list()
    ([31], ["age: 'n/a' is not an integer", 'age: -4 is below the minimum 0', 'duplicate of an earlier row'])
    """
    import polars as pl

    provenance = [c for c in PROVENANCE_COLUMNS if c in frame.columns]
    extra = tuple(c for c in frame.columns if c not in contract and c not in provenance)
    converted: dict[str, pl.Series] = {}
    checks: list[pl.Series] = []
    violations: list[Violation] = []
    coerced: list[str] = []
    for spec in contract.columns:
        if spec.name not in frame.columns:
            missing = pl.Series(spec.name, [None] * frame.height, dtype=polars_dtype(spec.type))
            converted[spec.name] = missing
            if not spec.nullable:
                reason = pl.Series([f"{spec.name}: column is missing"] * frame.height, dtype=pl.String)
                checks.append(reason.alias(f"{spec.name}:missing_column"))
            violations.append(
                Violation(
                    column=spec.name,
                    rule="missing_column",
                    rows=0 if spec.nullable else frame.height,
                    example="column absent from the data",
                )
            )
            continue
        original = frame[spec.name]
        value = convert(original, spec.type)
        if original.dtype != value.dtype:
            coerced.append(spec.name)
        converted[spec.name] = value
        checks.extend(_column_checks(original, value, spec))

    reasons = _combine(checks, frame.height)
    clean_values = pl.DataFrame(list(converted.values())) if converted else pl.DataFrame()
    duplicate = pl.Series("dup", [False] * frame.height)
    hashes = row_hash(clean_values, contract) if converted else None
    if drop_duplicates and hashes is not None:
        duplicate = ~_first_distinct(clean_values, hashes) & reasons.is_null()
        reasons = pl.select(
            pl.when(duplicate).then(pl.lit("duplicate of an earlier row")).otherwise(reasons)
        ).to_series()
    bad = reasons.is_not_null()

    for check in checks:
        hits = check.is_not_null()
        n = int(hits.sum())
        if n and not check.name.endswith(":missing_column"):
            column, rule = check.name.rsplit(":", 1)
            example = frame[column].filter(hits).cast(pl.String, strict=False).head(1).to_list()
            violations.append(
                Violation(column=column, rule=rule, rows=n, example=example[0] if example else None)
            )
    n_dupes = int(duplicate.sum())
    if n_dupes:
        violations.append(Violation(column="*", rule="duplicate", rows=n_dupes))

    clean = clean_values.with_columns(frame.select(provenance)).filter(~bad) if provenance else (
        clean_values.filter(~bad)
    )
    data_columns = [c for c in frame.columns if c not in provenance]
    quarantined = (
        frame.filter(bad)
        .with_columns(pl.col(data_columns).cast(pl.String, strict=False))
        .with_columns(reasons.filter(bad).alias(REASONS))
    )
    report = ValidationReport(
        source=contract.source,
        contract_fingerprint=contract.fingerprint(),
        rows_in=frame.height,
        rows_accepted=clean.height,
        rows_quarantined=quarantined.height,
        duplicates=n_dupes,
        violations=tuple(violations),
        coerced_columns=tuple(coerced),
        extra_columns=extra,
    )
    return Validated(report=report, clean=clean, quarantined=quarantined,
                     hashes=None if hashes is None else hashes.filter(~bad))


def row_hash(frame: pl.DataFrame, contract: Contract) -> pl.Series:
    """A 64-bit hash of each row's contract columns (Polars' row hash with fixed seeds:
    stable within one Polars version)."""
    import polars as pl

    names = [n for n in contract.names if n in frame.columns]
    if not names or frame.height == 0:
        return pl.Series(ROW_HASH, [], dtype=pl.Int64).extend_constant(None, frame.height)
    return frame.select(names).hash_rows(seed=_SEED).reinterpret(signed=True).alias(ROW_HASH)


def _column_checks(original: pl.Series, value: pl.Series, spec: ColumnSpec) -> list[pl.Series]:
    """One string Series per rule: the reason where a row breaks it, else null."""
    name = spec.name
    present = original.is_not_null()
    if original.dtype.is_float():
        present = present & ~original.is_nan()
    text = original  # shown as text: cast for the failing rows only (in _reason)
    out = []

    failed = present & value.is_null()
    if spec.type not in ("string", "category"):
        kind = _ARTICLE[spec.type]
        out.append(_reason(failed, f"{name}: '{{}}' is not {kind}", text, f"{name}:type"))
    if not spec.nullable:
        out.append(_reason(~present, f"{name}: missing value", None, f"{name}:not_null"))
    if spec.type in ("integer", "float"):
        shown = value
        if spec.min is not None:
            below = (value < spec.min).fill_null(False)
            out.append(
                _reason(below, f"{name}: {{}} is below the minimum {_n(spec.min)}", shown,
                        f"{name}:min")
            )
        if spec.max is not None:
            above = (value > spec.max).fill_null(False)
            out.append(
                _reason(above, f"{name}: {{}} is above the maximum {_n(spec.max)}", shown,
                        f"{name}:max")
            )
    if spec.allowed is not None:
        unknown = (~value.is_in(list(spec.allowed))).fill_null(False) & value.is_not_null()
        out.append(
            _reason(unknown, f"{name}: '{{}}' is not an allowed category", text,
                    f"{name}:allowed")
        )
    return out


def _reason(mask: pl.Series, template: str, values: pl.Series | None, name: str) -> pl.Series:
    """``pl.format(template, values)`` (or ``template`` itself without ``values``) where
    ``mask`` holds, else null; built for the failing rows only, and not at all when none fails
    (most checks)."""
    import polars as pl

    out = pl.Series(name, dtype=pl.String).extend_constant(None, mask.len())
    if not mask.any():
        return out
    where = mask.arg_true()
    if values is None:
        text = pl.Series([template], dtype=pl.String).gather([0] * where.len())
    else:
        shown = values.gather(where).cast(pl.String, strict=False)
        text = pl.select(pl.format(template, shown)).to_series()
    return out.scatter(where, text)


def _combine(checks: list[pl.Series], height: int) -> pl.Series:
    """The reasons of each row joined by "; " (null for a row without any); only the rows
    with a reason are joined."""
    import polars as pl

    out = pl.Series(REASONS, dtype=pl.String).extend_constant(None, height)
    failing = [c for c in checks if c.null_count() < c.len()]
    if not failing:
        return out
    hit = pl.select(pl.any_horizontal([c.is_not_null() for c in failing])).to_series()
    where = hit.arg_true()
    joined = pl.select(
        pl.concat_str([c.gather(where) for c in failing], separator="; ", ignore_nulls=True)
    ).to_series()
    return out.scatter(where, joined).replace("", None)


def _first_distinct(frame: pl.DataFrame, hashes: pl.Series) -> pl.Series:
    """Whether each row is the first with its values (nulls equal), exactly: rows are told
    apart by their 64-bit ``row_hash``, and only the rows whose hash repeats are compared by
    value."""
    import polars as pl

    repeated = hashes.is_duplicated()
    first = pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True)
    if not repeated.any():
        return first
    where = repeated.arg_true()
    same = frame[where].select(pl.struct(pl.all()).is_first_distinct()).to_series()
    return first.scatter(where, same)


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
