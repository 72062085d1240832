"""Where each row of a chunk goes: the clean table or quarantine (a pure function).

``route`` validates the rows against the contract, quarantines duplicates (within the chunk
and of rows already in the clean table, found by a hash of the contract's columns) and rows
whose type conflicts with the clean table (by config), and, for a source with a key, keeps the
latest row of each key. A source's ``cleaning`` settings clean the rows as they are validated
(``quality.validate``), and the duplicates are counted in the cleaning log. Every row it is
given ends in exactly one of ``clean`` or ``quarantine``, or is counted in ``superseded`` (a
keyed row replaced by a later one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.contract import PROVENANCE_COLUMNS, Contract
from loopml.core.errors import LakeConflictError
from loopml.core.records import CleaningChange, CleaningLog, ValidationReport, Violation
from loopml.quality import REASONS, ROW_HASH, row_hash, validate

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.cleaning import CleaningConfig

RAW_TEXT = "_raw"  # the text of a row the reader could not parse
DUPLICATE_EARLIER = "duplicate of a row ingested before"
_AT = "\x00validated"  # a clean row's position in what ``validate`` accepted (cleaning counts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Routed:
    clean: pl.DataFrame  # contract types + provenance + _row_hash
    quarantine: pl.DataFrame  # values as text + provenance + _reasons (+ _raw)
    report: ValidationReport  # rows_in == accepted + quarantined; accepted counts superseded
    superseded: int  # keyed rows replaced by a later row of the same key (chunk or table)
    conflicts: int  # rows quarantined for a type conflict with the clean table


def route(
    rows: pl.DataFrame,
    contract: Contract,
    *,
    rejected: pl.DataFrame | None = None,
    seen: pl.Series | Callable[[pl.Series], pl.Series] | None = None,
    table_schema: dict[str, Any] | None = None,
    table: str = "clean",
    key: tuple[str, ...] = (),
    latest_by: str | None = None,
    newer: Callable[[pl.DataFrame], pl.Series] | None = None,
    on_type_conflict: str = "error",
    cleaning: CleaningConfig | None = None,
) -> Routed:
    """Split ``rows`` into clean and quarantined rows; ``rejected`` (reader-rejected rows with
    ``_raw`` and ``_reasons``) go to quarantine as they are. ``seen`` holds the row hashes
    already in the clean table, or looks up which of the given hashes are there;
    ``table_schema`` is the clean table's column types; ``newer`` tells, for keyed rows, which
    ones the clean table already holds a later version of (by ``latest_by``): those are
    superseded, as an earlier row of the same key in the chunk is."""
    import polars as pl

    checked = validate(rows, contract, cleaning=cleaning)
    hashes = checked.hashes if checked.hashes is not None else row_hash(checked.clean, contract)
    clean = checked.clean.with_columns(hashes)
    if checked.recount is not None:
        clean = clean.with_row_index(_AT)
    parts = [checked.quarantined]
    violations = list(checked.report.violations)

    earlier = 0
    if seen is not None and clean.height:
        known = seen(clean[ROW_HASH].drop_nulls().unique()) if callable(seen) else seen
        hit = clean[ROW_HASH].is_in(known.implode(), nulls_equal=False).fill_null(False)
        earlier = int(hit.sum())
        if earlier:
            parts.append(_as_quarantine(clean.filter(hit), DUPLICATE_EARLIER))
            clean = clean.filter(~hit)
            violations.append(Violation(column="*", rule="duplicate", rows=earlier))

    conflicts = 0
    if table_schema and clean.height:
        clean, bad, notes = _type_conflicts(clean, table_schema, table, on_type_conflict)
        conflicts = bad.height
        if conflicts:
            parts.append(bad)
            violations.extend(notes)

    accepted = clean.height
    superseded = 0
    if key and clean.height:
        clean, superseded = _latest(clean, key, latest_by)
        if newer is not None and clean.height:
            stale = newer(clean)
            clean = clean.filter(~stale)
            superseded += int(stale.sum())

    log = None
    if checked.recount is not None:  # the changes in the rows that stay clean
        log = checked.recount(clean[_AT].cast(pl.Int64))
        clean = clean.drop(_AT)
    n_rejected = 0 if rejected is None else rejected.height
    if n_rejected:
        parts.append(rejected)  # type: ignore[arg-type]
        violations.append(Violation(column="*", rule="unreadable", rows=n_rejected))
    parts = [p for p in parts if p.height]
    quarantine = (
        pl.concat(parts, how="diagonal_relaxed") if parts else checked.quarantined.clear()
    )
    base = checked.report
    report = ValidationReport(
        source=base.source,
        contract_fingerprint=base.contract_fingerprint,
        rows_in=rows.height + n_rejected,
        rows_accepted=accepted,
        rows_quarantined=quarantine.height,
        duplicates=base.duplicates + earlier,
        violations=tuple(violations),
        coerced_columns=base.coerced_columns,
        extra_columns=base.extra_columns,
        warned_rows=base.warned_rows,
        cleaning=_with_duplicates(log, base.duplicates, earlier, superseded, key),
    )
    return Routed(clean=clean, quarantine=quarantine, report=report, superseded=superseded,
                  conflicts=conflicts)


def _with_duplicates(log: CleaningLog | None, exact: int, earlier: int, superseded: int,
                     key: tuple[str, ...]) -> CleaningLog | None:
    """The cleaning log with the duplicates routing set aside (exact copies in the chunk or
    in the clean table, to quarantine; rows of a key a later row replaced)."""
    if log is None:
        return None
    found = [("*", "exact", exact), ("*", "exact, ingested before", earlier),
             (",".join(key), "key, latest kept", superseded)]
    return log.plus(CleaningLog(changes=tuple(
        CleaningChange(step="duplicates", column=column, action=action, rows=n)
        for column, action, n in found if n)))


def _as_quarantine(frame: pl.DataFrame, reason: str | pl.Series) -> pl.DataFrame:
    """Clean rows as quarantined rows: their values as text, with a reason."""
    import polars as pl

    data = [c for c in frame.columns if c not in (*PROVENANCE_COLUMNS, ROW_HASH, _AT)]
    out = frame.drop(ROW_HASH, _AT, strict=False).with_columns(
        pl.col(data).cast(pl.String, strict=False)
    )
    if isinstance(reason, str):
        return out.with_columns(pl.lit(reason, dtype=pl.String).alias(REASONS))
    return out.with_columns(reason.alias(REASONS))


def _type_conflicts(
    clean: pl.DataFrame, schema: dict[str, Any], table: str, mode: str
) -> tuple[pl.DataFrame, pl.DataFrame, list[Violation]]:
    """Cast columns to the table's types where that keeps every value; the other columns
    are a clear error, or send their rows (those with a value there) to quarantine."""
    import polars as pl

    casts: dict[str, Any] = {}
    bad_mask = pl.Series([False] * clean.height)
    reasons: list[pl.Series] = []
    notes: list[Violation] = []
    for name, dtype in clean.schema.items():
        want = schema.get(name)
        if want is None or want == dtype or name == ROW_HASH:
            continue
        if dtype == pl.Null or _widens(dtype, want):
            casts[name] = want
            continue
        if mode == "error":
            raise LakeConflictError(
                f"Column {name!r} of {table} holds {_type(want)}, but this batch holds "
                f"{_type(dtype)}: the types conflict.",
                hint=f"Make the contract's type of {name!r} match the table's, or set "
                "on_type_conflict: quarantine on the source to quarantine such rows.",
            )
        hit = clean[name].is_not_null()
        bad_mask = bad_mask | hit
        text = f"{name}: {_type(dtype)} does not fit the clean table's type {_type(want)}"
        reasons.append(pl.select(pl.when(hit).then(pl.lit(text))).to_series().alias(name))
        notes.append(Violation(column=name, rule="type_conflict", rows=int(hit.sum()),
                               example=_type(dtype)))
        casts[name] = want  # only nulls remain in the clean rows
    bad = clean.clear()
    if reasons:
        why = pl.select(pl.concat_str(reasons, separator="; ", ignore_nulls=True)).to_series()
        bad = _as_quarantine(clean.filter(bad_mask), why.filter(bad_mask))
        clean = clean.filter(~bad_mask)
    if casts:
        clean = clean.with_columns(
            [pl.col(n).cast(t) if clean.height else pl.col(n).cast(t, strict=False)
             for n, t in casts.items()]
        )
    return clean, bad, notes


def _latest(clean: pl.DataFrame, key: tuple[str, ...], latest_by: str | None) -> tuple[Any, int]:
    """One row per key: the largest ``latest_by`` (ties and no column: the last one)."""

    indexed = clean.with_row_index("__pos")
    order = [latest_by, "__pos"] if latest_by and latest_by in clean.columns else ["__pos"]
    kept = (
        indexed.sort(order, nulls_last=False)
        .unique(list(key), keep="last", maintain_order=False)
        .sort("__pos")
        .drop("__pos")
    )
    return kept, clean.height - kept.height


_WIDER = {  # a batch type -> the table types that hold each of its values unchanged
    "Int8": ("Int16", "Int32", "Int64", "Float64"),
    "Int16": ("Int32", "Int64", "Float64"),
    "Int32": ("Int64", "Float64"),
    "Int64": ("Float64",),
    "UInt8": ("Int16", "Int32", "Int64", "Float64"),
    "UInt16": ("Int32", "Int64", "Float64"),
    "UInt32": ("Int64", "Float64"),
    "Float32": ("Float64",),
}


def _widens(source: Any, target: Any) -> bool:
    import polars as pl

    if isinstance(source, pl.Datetime) and isinstance(target, pl.Datetime):
        return True  # another unit or zone: the lake stores microseconds in UTC
    return _type(target) in _WIDER.get(_type(source), ())


def _type(dtype: Any) -> str:
    return str(dtype)
