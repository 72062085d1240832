"""Validating a frame against its contract: clean rows out, bad rows to quarantine with reasons.

Every input row ends up in exactly one of the two outputs; duplicates of an earlier row are
quarantined too (reason "duplicate"), so ``rows_in == rows_accepted + rows_quarantined``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.contract import PROVENANCE_COLUMNS, Contract, polars_dtype
from loopml.core.convert import convert
from loopml.core.errors import SchemaError
from loopml.core.records import CleaningLog, Validated, ValidationReport, Violation
from loopml.quality._checks import ORIGINAL, SLOT, Check, checks
from loopml.quality._clean import after_rules, categories, check_cleaning, log_of, repaired

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.cleaning import CleaningConfig
    from loopml.quality._clean import Pending

REASONS = "_reasons"
ROW_HASH = "_row_hash"  # a hash of a clean row's contract columns: duplicates of earlier rows
_SEED = 0x6C6F6F70  # "loop"


def validate(frame: pl.DataFrame, contract: Contract, *, drop_duplicates: bool = True,
             batch_rules: bool = True, cleaning: CleaningConfig | None = None) -> Validated:
    """Split ``frame`` into clean rows (typed as the contract says) and quarantined rows.

    Every rule of the contract is a boolean Polars expression, all evaluated in one pass
    (``loopml.quality._checks``); a row that breaks ``error`` rules is quarantined with every
    reason, a row that breaks only ``warn`` rules is kept and counted. ``batch_rules`` (null
    rates, uniqueness, the key) judge the frame as one batch: off for rows that are not one
    (requests to score). ``cleaning`` (a source's settings) repairs and normalises values
    before the rules and fills, drops, flags or clips after them (``quality._clean``); what
    it changed in the accepted rows is the report's ``cleaning`` log. Quarantined rows keep
    their values as they came.

    >>> import polars as pl
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> c = Contract(source="s", columns=(ColumnSpec(name="age", type="integer", min=0, max=150),))
    >>> v = validate(pl.DataFrame({"age": ["31", "n/a", "-4", "31"]}), c)
    >>> v.clean["age"].to_list(), v.quarantined["_reasons"].to_list()
    ([31], ["age: 'n/a' is not an integer", 'age: -4 is below the minimum 0', 'duplicate of an earlier row'])
    """
    import polars as pl

    came = frame  # quarantine shows the values as they came
    pending: list[Pending] = []
    repair = None
    if cleaning is not None:
        check_cleaning(cleaning, contract)
        frame, pending = categories(frame, contract, cleaning)
        repair = None if cleaning.repair is None else cleaning.repair.options()
    provenance = [c for c in PROVENANCE_COLUMNS if c in frame.columns]
    extra = tuple(c for c in frame.columns if c not in contract and c not in provenance)
    converted: dict[str, pl.Series] = {}
    missing: list[pl.Series] = []
    violations: list[Violation] = []
    coerced: list[str] = []
    for spec in contract.columns:
        if spec.name not in frame.columns:
            converted[spec.name] = pl.Series(spec.name, [None] * frame.height,
                                             dtype=polars_dtype(spec.type))
            if not spec.nullable:
                missing.append(pl.Series(f"{spec.name}:missing_column",
                                         [f"{spec.name}: column is missing"] * frame.height,
                                         dtype=pl.String))
            violations.append(Violation(column=spec.name, rule="missing_column",
                                        rows=0 if spec.nullable else frame.height,
                                        example="column absent from the data"))
            continue
        original = frame[spec.name]
        if repair is None:
            value = convert(original, spec.type)
        else:
            value, change = repaired(original, spec, repair)
            pending.append(change)
        if original.dtype != value.dtype:
            coerced.append(spec.name)
        converted[spec.name] = value

    clean_values = pl.DataFrame(list(converted.values())) if converted else pl.DataFrame()
    errors, warned, found = _evaluate(frame, clean_values, contract, batch_rules=batch_rules)
    violations.extend(found)
    if cleaning is not None and converted:
        after = after_rules(frame, clean_values, contract, cleaning)
        clean_values = after.values
        errors = [*errors, *after.reasons]
        violations.extend(after.violations)
        pending.extend(after.pending)
        if after.flagged is not None:
            warned = after.flagged if warned is None else warned | after.flagged
    reasons = _combine([*missing, *errors], frame.height)
    duplicate = pl.Series("dup", [False] * frame.height)
    hashes = row_hash(clean_values, contract) if converted else None
    if drop_duplicates and hashes is not None:
        # only rows that broke no rule take part: a quarantined row whose failed value became
        # null must not make a later, valid row with a real null there a "duplicate" of it
        ok = reasons.is_null()
        duplicate = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(
            ok.arg_true(), ~_first_distinct(clean_values.filter(ok), hashes.filter(ok)))
        reasons = pl.select(
            pl.when(duplicate).then(pl.lit("duplicate of an earlier row")).otherwise(reasons)
        ).to_series()
    bad = reasons.is_not_null()
    n_dupes = int(duplicate.sum())
    if n_dupes:
        violations.append(Violation(column="*", rule="duplicate", rows=n_dupes))

    clean = clean_values.with_columns(frame.select(provenance)).filter(~bad) if provenance else (
        clean_values.filter(~bad)
    )
    data_columns = [c for c in frame.columns if c not in provenance]
    quarantined = (
        came.filter(bad)
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
        warned_rows=0 if warned is None else int((warned & ~bad).sum()),
        cleaning=None if cleaning is None else log_of(pending, ~bad),
    )
    recount = None
    if cleaning is not None:
        kept = (~bad).arg_true()

        def recount(positions: pl.Series) -> CleaningLog:
            rows = pl.Series([False] * frame.height).scatter(kept.gather(positions), True)
            return log_of(pending, rows)

    return Validated(report=report, clean=clean, quarantined=quarantined,
                     hashes=None if hashes is None else hashes.filter(~bad), recount=recount)


def _evaluate(frame: pl.DataFrame, values: pl.DataFrame, contract: Contract, *,
              batch_rules: bool) -> tuple[list[pl.Series], pl.Series | None, list[Violation]]:
    """Every check's mask in one pass: the reasons of the ``error`` checks (a string Series
    each, null where the row passes), which rows broke a ``warn`` check, and a violation per
    check that some row broke."""
    import polars as pl

    found = checks(frame, values, contract, batch_rules=batch_rules)
    if not found or frame.height == 0:
        return [], None, []
    work = values.hstack([frame[c.name].alias(ORIGINAL + c.name) for c in contract.columns
                          if c.name in frame.columns])
    try:
        masks = work.select([c.mask.alias(c.id) for c in found])
    except Exception as exc:  # noqa: BLE001 - a rule whose check Polars cannot evaluate
        raise _broken_rule(work, found, exc) from None
    hits = masks.select(pl.all().sum()).row(0)
    errors: list[pl.Series] = []
    warns: list[pl.Series] = []
    violations: list[Violation] = []
    for check, n in zip(found, hits, strict=True):
        if not n:
            continue
        mask = masks[check.id]
        violations.append(Violation(column=check.column, rule=check.rule, rows=int(n),
                                    example=_example(work, mask, check),
                                    severity=check.severity))
        if check.severity == "error":
            errors.append(_reason(work, mask, check))
        else:
            warns.append(mask)
    warned = pl.select(pl.any_horizontal(warns)).to_series() if warns else None
    return errors, warned, violations


def _broken_rule(work: pl.DataFrame, found: list[Check], exc: Exception) -> SchemaError:
    """The error for the first check Polars cannot evaluate (a rule comparing a date with a
    number, say)."""
    for check in found:
        try:
            work.head(1).select(check.mask)
        except Exception as inner:  # noqa: BLE001
            return SchemaError(
                f"Rule {check.rule!r} cannot be checked: {str(inner).splitlines()[0]}",
                hint="Fix the rule in the contract; 'loopml contract check' explains mistakes.",
            )
    return SchemaError(f"The contract's checks cannot be evaluated: {str(exc).splitlines()[0]}")


def _example(work: pl.DataFrame, mask: pl.Series, check: Check) -> str | None:
    """The first breaking row's value as text (what the reason shows), or None."""
    if not check.shown:
        return None
    first = int(mask.arg_true()[0])
    return _shown(work[first], check).item()


def _shown(rows: pl.DataFrame, check: Check) -> pl.Series:
    """What the reason shows of ``rows``: one column's value, or ``name=value`` pairs."""
    import polars as pl

    cols = [rows[c].cast(pl.String, strict=False).fill_null("null") for c in check.shown]
    if not check.labels:
        return cols[0] if len(cols) == 1 else pl.select(
            pl.concat_str(cols, separator=", ")).to_series()
    parts = []
    for label, col in zip(check.labels, cols, strict=True):
        parts.extend([pl.lit(f"{label}="), col])
        parts.append(pl.lit(", "))
    return pl.select(pl.concat_str(parts[:-1])).to_series()


def row_hash(frame: pl.DataFrame, contract: Contract) -> pl.Series:
    """A 64-bit hash of each row's contract columns (Polars' row hash with fixed seeds:
    stable within one Polars version)."""
    import polars as pl

    names = [n for n in contract.names if n in frame.columns]
    if not names or frame.height == 0:
        return pl.Series(ROW_HASH, [], dtype=pl.Int64).extend_constant(None, frame.height)
    return frame.select(names).hash_rows(seed=_SEED).reinterpret(signed=True).alias(ROW_HASH)


def _reason(work: pl.DataFrame, mask: pl.Series, check: Check) -> pl.Series:
    """The check's reason where ``mask`` holds, else null; text built for those rows only."""
    import polars as pl

    out = pl.Series(check.id, dtype=pl.String).extend_constant(None, mask.len())
    where = mask.arg_true()
    if not check.shown:
        text = pl.Series([check.template], dtype=pl.String).gather([0] * where.len())
    else:
        text = fill(check.template, _shown(work.select(check.shown)[where], check))
    return out.scatter(where, text)


def fill(template: str, shown: pl.Series) -> pl.Series:
    """``template`` with its ``SLOT`` replaced by each value of ``shown``."""
    import polars as pl

    before, _, after = template.partition(SLOT)
    return pl.select(pl.concat_str([pl.lit(before), shown, pl.lit(after)])).to_series()


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

    first = pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True)
    ordered = hashes.sort()  # a sort finds whether any hash repeats in a third of the time
    if frame.height < 2 or not (ordered.slice(1) == ordered.slice(0, frame.height - 1)).any():
        return first
    repeated = hashes.is_duplicated()
    where = repeated.arg_true()
    same = frame[where].select(pl.struct(pl.all()).is_first_distinct()).to_series()
    return first.scatter(where, same)
