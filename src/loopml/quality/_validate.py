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
    if drop_duplicates and converted:
        first = clean_values.select(pl.struct(pl.all()).is_first_distinct()).to_series()
        duplicate = ~first & reasons.is_null()
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
    return Validated(report=report, clean=clean, quarantined=quarantined)


def _column_checks(original: pl.Series, value: pl.Series, spec: ColumnSpec) -> list[pl.Series]:
    """One string Series per rule: the reason where a row breaks it, else null."""
    import polars as pl

    name = spec.name
    present = original.is_not_null()
    if original.dtype.is_float():
        present = present & ~original.is_nan()
    text = original.cast(pl.String, strict=False)
    out = []

    failed = present & value.is_null()
    if spec.type not in ("string", "category"):
        kind = _ARTICLE[spec.type]
        out.append(_reason(failed, pl.format(f"{name}: '{{}}' is not {kind}", text), f"{name}:type"))
    if not spec.nullable:
        out.append(_reason(~present, pl.lit(f"{name}: missing value"), f"{name}:not_null"))
    if spec.type in ("integer", "float"):
        shown = value.cast(pl.String)
        if spec.min is not None:
            below = (value < spec.min).fill_null(False)
            out.append(
                _reason(below, pl.format(f"{name}: {{}} is below the minimum {_n(spec.min)}", shown),
                        f"{name}:min")
            )
        if spec.max is not None:
            above = (value > spec.max).fill_null(False)
            out.append(
                _reason(above, pl.format(f"{name}: {{}} is above the maximum {_n(spec.max)}", shown),
                        f"{name}:max")
            )
    if spec.allowed is not None:
        unknown = (~value.is_in(list(spec.allowed))).fill_null(False) & value.is_not_null()
        out.append(
            _reason(unknown, pl.format(f"{name}: '{{}}' is not an allowed category", text),
                    f"{name}:allowed")
        )
    return out


def _reason(mask: pl.Series, message: pl.Expr, name: str) -> pl.Series:
    import polars as pl

    return pl.select(pl.when(mask).then(message).otherwise(None)).to_series().alias(name)


def _combine(checks: list[pl.Series], height: int) -> pl.Series:
    import polars as pl

    if not checks:
        return pl.Series(REASONS, [None] * height, dtype=pl.String)
    return pl.select(pl.concat_str(checks, separator="; ", ignore_nulls=True)).to_series().alias(
        REASONS
    ).replace("", None)


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
