"""Cleaning a batch while it is validated, every change counted (``CleaningLog``).

``validate`` runs the steps a source's ``cleaning`` settings turn on: before the rules, the
spellings of a category are made one (``categories``) and values the contract's type cannot read
as written are repaired by the one converter (``repair``, ``core.convert.Repair``), so that
repaired values are validated; after the rules, missing values drop their row (to quarantine,
with a reason) or are filled with a fixed value, and outliers beyond fixed fences are flagged
(a warning) or clipped. Every number a step uses comes from the settings, never from the batch,
so a row is cleaned the same way in whichever chunk it comes; only merging spellings without
an allowed list picks the batch's most frequent spelling.

Changes are counted over the rows validation accepts.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.contract import NUMERIC_TYPES, ColumnSpec, Contract
from loopml.core.convert import Repair, convert
from loopml.core.errors import ConfigError, unknown_name
from loopml.core.records import CleaningChange, CleaningLog, Violation

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.cleaning import CleaningConfig

EXAMPLES = 5  # (before, after, count) kept per step and column
MAX_SPELLINGS = 2000  # distinct spellings compared pairwise (without an allowed list) at most
DROP_RULE = "missing (drop)"
OUTLIER_RULE = "outlier"
_TEXT_TYPES = ("string", "category")


@dataclass(frozen=True, slots=True)
class Pending:
    """A change over the whole batch: ``mask`` marks the rows it changed; counted once the
    rows validation accepts are known."""

    step: str
    column: str
    action: str
    mask: pl.Series
    before: pl.Series
    after: pl.Series


def check_cleaning(cleaning: CleaningConfig, contract: Contract) -> None:
    """A ``ConfigError`` for settings that do not fit the contract: an unknown column, a
    statistic of a text column, outliers of a non-numeric one, a fill value of the wrong type."""
    where = f"sources.{contract.source}.cleaning"

    def spec_of(part: str, name: str) -> ColumnSpec:
        if name not in contract:
            raise ConfigError(
                f"{where}.{part} names " + unknown_name("column", name, contract.names),
                hint=f"Name columns of contracts/{contract.source}.yaml in loopml.yaml.")
        return contract.column(name)

    if cleaning.categories is not None:
        for name in cleaning.categories.columns or ():
            spec = spec_of("categories", name)
            if spec.type not in _TEXT_TYPES:
                raise ConfigError(
                    f"{where}.categories lists {name!r}, a {spec.type} column: spellings are "
                    "made one in category and string columns only.",
                    hint=f"Remove {name!r} from categories.columns.")
    for name, rule in cleaning.missing.items():
        spec = spec_of("missing", name)
        if rule == "drop":
            continue
        if rule.impute in ("mean", "median") and spec.type not in NUMERIC_TYPES:
            raise ConfigError(
                f"{where}.missing.{name}: impute {rule.impute} needs a number column; "
                f"{name!r} is {spec.type}.",
                hint="Use impute: mode or constant for it.")
        if fill_value(rule.value, spec) is None:
            raise ConfigError(
                f"{where}.missing.{name}: the value {rule.value!r} is not {spec.type}.",
                hint=f"Write a value of the column's type ({spec.type}).")
    for name in cleaning.outliers:
        spec = spec_of("outliers", name)
        if spec.type not in NUMERIC_TYPES:
            raise ConfigError(
                f"{where}.outliers.{name}: outliers are found in number columns; {name!r} is "
                f"{spec.type}.",
                hint=f"Remove {name!r} from outliers.")


def fill_value(value: Any, spec: ColumnSpec) -> Any:
    """``value`` as the column's type (through the converter), or None if it is not one."""
    import polars as pl

    text = str(value).lower() if isinstance(value, bool) else str(value)
    return convert(pl.Series("v", [text], dtype=pl.String), spec.type)[0]


# ---- before the rules --------------------------------------------------------------------


def categories(frame: pl.DataFrame, contract: Contract, cleaning: CleaningConfig
               ) -> tuple[pl.DataFrame, list[Pending]]:
    """``frame`` with each category's spellings made one, and the changes."""
    import polars as pl

    config = cleaning.categories
    if config is None:
        return frame, []
    names = config.columns or tuple(c.name for c in contract.columns if c.type == "category")
    pending: list[Pending] = []
    for name in names:
        if name not in frame.columns:
            continue
        col = frame[name]
        if not (col.dtype == pl.String or isinstance(col.dtype, (pl.Categorical, pl.Enum))):
            continue
        text = col.cast(pl.String)
        counts = text.drop_nulls().value_counts(sort=False)
        seen = dict(zip(counts[name].to_list(), counts["count"].to_list(), strict=True))
        mapping, merged = spellings(seen, contract.column(name).allowed, config.similarity)
        if not mapping:
            continue
        after = text.replace_strict(mapping, default=text, return_dtype=pl.String)
        plain = text.str.strip_chars()  # what the converter gives without cleaning
        changed = (after != plain).fill_null(False)
        by_merge = text.is_in(pl.Series(sorted(merged), dtype=pl.String).implode())
        pending.append(Pending("categories", name, "normalise", changed & ~by_merge, text, after))
        pending.append(Pending("categories", name, "merge", changed & by_merge, text, after))
        frame = frame.with_columns(after.alias(name))
    return frame, pending


def normalised(text: str) -> str:
    """Unicode NFKC, outer whitespace stripped, inner runs of whitespace made one space.

    >>> normalised("  Ｐａｒｉｓ   Nord ")
    'Paris Nord'
    """
    return " ".join(unicodedata.normalize("NFKC", text).split())


def spellings(seen: dict[str, int], allowed: tuple[str, ...] | None, similarity: float | None
              ) -> tuple[dict[str, str], set[str]]:
    """Each spelling in ``seen`` (with its count) mapped to its category's spelling where they
    differ, and the spellings merged as near-duplicates. Spellings equal without case are one
    category: spelled as the allowed value, else as the most frequent (ties: the smallest).

    >>> spellings({"Paris": 3, " paris": 1, "PARIS": 1, "Pariss": 1}, None, 0.8)
    ({' paris': 'Paris', 'PARIS': 'Paris', 'Pariss': 'Paris'}, {'Pariss'})
    """
    norm = {v: normalised(v) for v in seen}
    target: dict[str, str] = {}
    merged: set[str] = set()
    if allowed is not None:
        by_key: dict[str, str] = {}
        for a in allowed:
            by_key.setdefault(normalised(a).casefold(), a)
        keys = list(by_key)
        exact = set(allowed)
        for v, n in norm.items():
            key = n.casefold()
            if n in exact:  # an allowed spelling stays, even beside another of its case
                target[v] = n
            elif key in by_key:
                target[v] = by_key[key]
                continue
            near = _nearest(key, keys, similarity) if similarity is not None else None
            target[v] = n if near is None else by_key[near]
            if near is not None:
                merged.add(v)
    else:
        groups: dict[str, dict[str, int]] = {}
        for v, n in norm.items():
            spelled = groups.setdefault(n.casefold(), {})
            spelled[n] = spelled.get(n, 0) + seen[v]
        spelling = {k: min(g, key=lambda s: (-g[s], s)) for k, g in groups.items()}
        root = {k: k for k in groups}
        if similarity is not None and len(groups) <= MAX_SPELLINGS:
            order = sorted(groups, key=lambda k: (-sum(groups[k].values()), k))
            roots: list[str] = []
            for k in order:
                near = _nearest(k, roots, similarity)
                if near is None:
                    roots.append(k)
                else:
                    root[k] = near
        for v, n in norm.items():
            key = n.casefold()
            target[v] = spelling[root[key]]
            if root[key] != key:
                merged.add(v)
    return {v: t for v, t in target.items() if t != v}, merged


def _nearest(key: str, candidates: list[str], threshold: float | None) -> str | None:
    """The candidate most similar to ``key`` at ``threshold`` or above (ties: the first)."""
    best, best_score = None, -1.0
    for c in candidates:
        score = similarity(key, c, at_least=threshold or 0.0)
        if score >= (threshold or 0.0) and score > best_score:
            best, best_score = c, score
    return best


def similarity(a: str, b: str, *, at_least: float = 0.0) -> float:
    """1 - Levenshtein distance / the longer length (1 for equal texts); 0 as soon as the
    result is known to be below ``at_least``.

    >>> round(similarity("paris", "pariss"), 3), similarity("ab", "xy")
    (0.833, 0.0)
    """
    if a == b:
        return 1.0
    longest = max(len(a), len(b))
    limit = math.floor((1 - at_least) * longest + 1e-9)  # the largest distance allowed
    if abs(len(a) - len(b)) > limit:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return 0.0
        previous = current
    return 1 - previous[-1] / longest


def repaired(original: pl.Series, spec: ColumnSpec, repair: Repair) -> tuple[pl.Series, Pending]:
    """The column converted with ``repair``, and the values it changed (read otherwise)."""
    value = convert(original, spec.type, repair)
    plain = convert(original, spec.type)
    changed = (value.is_not_null() & plain.is_null()) | (value != plain).fill_null(False)
    return value, Pending("repair", spec.name, _repair_kind(spec.type), changed, original, value)


def _repair_kind(column_type: str) -> str:
    return {"integer": "number", "float": "number", "datetime": "date", "date": "date",
            "boolean": "boolean"}.get(column_type, "text")


# ---- after the rules ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class After:
    values: pl.DataFrame  # imputed and clipped
    reasons: list[pl.Series]  # per dropping column: a reason where the value is missing
    flagged: pl.Series | None  # rows with a flagged outlier
    violations: list[Violation]
    pending: list[Pending]


def after_rules(frame: pl.DataFrame, values: pl.DataFrame, contract: Contract,
                cleaning: CleaningConfig) -> After:
    """Missing values (drop or fill) and outliers (flag or clip) of the converted ``values``;
    ``frame`` holds the values as they came (a missing value is one that came missing)."""
    import polars as pl

    reasons: list[pl.Series] = []
    violations: list[Violation] = []
    pending: list[Pending] = []
    flags: list[pl.Series] = []
    updates: dict[str, pl.Series] = {}
    for name, rule in cleaning.missing.items():
        if name not in values.columns:
            continue
        missing = values[name].is_null()
        if name in frame.columns:
            came = frame[name]
            missing = came.is_null() | (came.is_nan() if came.dtype.is_float() else False)
        n = int(missing.sum())
        if rule == "drop":
            if n:
                text = f"{name}: missing value (cleaning drops such rows)"
                reasons.append(pl.select(pl.when(pl.lit(missing)).then(pl.lit(text)))
                               .to_series().alias(name))
                violations.append(Violation(column=name, rule=DROP_RULE, rows=n))
                gone = pl.repeat("(row quarantined)", values.height, eager=True)
                pending.append(Pending("missing", name, "drop", missing, values[name], gone))
            continue
        value = fill_value(rule.value, contract.column(name))
        filled = values[name].fill_null(value)
        hit = values[name].is_null() & missing
        updates[name] = filled
        pending.append(Pending("missing", name, f"impute {rule.impute}", hit, values[name],
                               filled))
    if updates:
        values = values.with_columns(list(updates.values()))
    for name, rule in cleaning.outliers.items():
        if name not in values.columns:
            continue
        low, high = rule.fences
        col = values[name]
        if col.dtype.is_integer():
            low, high = math.ceil(low), math.floor(high)
        outside = ((col < low) | (col > high)).fill_null(False)
        n = int(outside.sum())
        if not n:
            continue
        if rule.action == "flag":
            flags.append(outside)
            first = col.filter(outside)[0]
            violations.append(Violation(column=name, rule=OUTLIER_RULE, rows=n,
                                        example=str(first), severity="warn"))
            pending.append(Pending("outliers", name, f"flag {rule.method}", outside, col, col))
        else:
            clipped = col.clip(low, high).cast(col.dtype)
            values = values.with_columns(clipped.alias(name))
            pending.append(Pending("outliers", name, f"clip {rule.method}", outside, col,
                                   clipped))
    flagged = pl.select(pl.any_horizontal(flags)).to_series() if flags else None
    return After(values=values, reasons=reasons, flagged=flagged, violations=violations,
                 pending=pending)


def clean_served(frame: pl.DataFrame, contract: Contract, cleaning: CleaningConfig
                 ) -> pl.DataFrame:
    """Served rows (already in the contract's types) cleaned as the rows the model learned
    from were: category spellings made one, missing values filled, outliers clipped. Nothing
    is dropped or flagged here: a row whose cleaning would quarantine it is scored as it is
    (its missing value imputed by the model), since a request wants an answer per row."""
    frame, _ = categories(frame, contract, cleaning)
    if not (cleaning.missing or cleaning.outliers):
        return frame
    return frame.with_columns(after_rules(frame, frame, contract, cleaning).values)


def log_of(pending: list[Pending], kept: pl.Series) -> CleaningLog:
    """The changes in the ``kept`` rows (drops: in every row, they are the reason a row is not
    kept), with their most frequent (before, after) pairs."""
    import polars as pl

    out: list[CleaningChange] = []
    for p in pending:
        mask = p.mask if p.action == "drop" else p.mask & kept
        n = int(mask.sum())
        if not n:
            continue
        pairs = pl.DataFrame({
            "before": _shown(p.before.filter(mask)), "after": _shown(p.after.filter(mask)),
        }).group_by("before", "after").len()
        top = pairs.sort(["len", "before", "after"], descending=[True, False, False]).head(
            EXAMPLES)
        out.append(CleaningChange(step=p.step, column=p.column, action=p.action, rows=n,
                                  examples=tuple(top.iter_rows())))
    return CleaningLog().plus(CleaningLog(changes=tuple(out)), examples=EXAMPLES)


def _shown(values: pl.Series) -> pl.Series:
    import polars as pl

    return values.cast(pl.String, strict=False).fill_null("null")
