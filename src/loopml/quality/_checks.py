"""The contract's rules as Polars expressions: one boolean per row and rule, true where the row
breaks it.

``checks`` turns a contract into ``Check`` objects over a *work frame*: each contract column
holds its converted value under its own name (so that a rule's SQL reads the typed values),
and the value as it came under ``ORIGINAL + name`` (so that a reason shows what was sent).
``validate`` evaluates every mask in one ``select`` (Polars runs them in parallel) and builds
reason text only for the rows that break a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.core.contract import ColumnSpec, Contract, Rule
from loopml.core.errors import SchemaError

if TYPE_CHECKING:
    import polars as pl

ORIGINAL = "\x00original:"  # the work frame's name for a column's value as it came
SLOT = "\x00"  # where a reason template shows the row's values (user text may hold braces)
MIN_RATE_ROWS = 100  # a batch smaller than this says too little about a null rate
_ARTICLE = {"integer": "an integer", "float": "a number", "boolean": "a boolean",
            "datetime": "a date-time", "date": "a date"}


@dataclass(frozen=True, slots=True)
class Check:
    """One rule over the work frame: ``mask`` is true where a row breaks it; the reason is
    ``template`` with ``{}`` filled by the ``shown`` columns' values of that row."""

    column: str  # a contract column, "a,b" for a key, "*" for a rule over several columns
    rule: str
    severity: str
    mask: pl.Expr
    template: str
    shown: tuple[str, ...] = ()  # work-frame columns whose values the reason shows
    labels: tuple[str, ...] = ()  # with several shown columns: their names in the reason

    @property
    def id(self) -> str:
        return f"{self.column}:{self.rule}"


def checks(frame: pl.DataFrame, values: pl.DataFrame, contract: Contract, *,
           batch_rules: bool) -> list[Check]:
    """Every check of ``contract`` for a frame of ``values`` (converted) read from ``frame``.
    ``batch_rules`` adds the rules about a whole batch: null rates, uniqueness, the key."""
    out: list[Check] = []
    for spec in contract.columns:
        if spec.name in frame.columns:
            out.extend(_column(frame, values, spec, batch_rules=batch_rules))
    if batch_rules and contract.key and all(k in frame.columns for k in contract.key):
        out.append(_key(contract.key))
    out.extend(_rule(rule, contract) for rule in contract.rules)
    return out


def _column(frame: pl.DataFrame, values: pl.DataFrame, spec: ColumnSpec, *,
            batch_rules: bool) -> list[Check]:
    import polars as pl

    name = spec.name
    original, value = pl.col(ORIGINAL + name), pl.col(name)
    present = original.is_not_null()
    if frame[name].dtype.is_float():
        present = present & ~original.is_nan()
    out: list[Check] = []

    def add(rule: str, mask: pl.Expr, template: str, shown: str | None = None) -> None:
        out.append(Check(column=name, rule=rule, severity=spec.severity_of(rule), mask=mask,
                         template=template, shown=() if shown is None else (shown,)))

    if spec.type not in ("string", "category"):
        add("type", present & value.is_null(), f"{name}: '{SLOT}' is not {_ARTICLE[spec.type]}",
            ORIGINAL + name)
    if not spec.nullable:
        add("not_null", ~present, f"{name}: missing value")
    rate = _null_rate(values[name]) if batch_rules and spec.max_null_rate is not None else None
    if rate is not None and rate > spec.max_null_rate:  # type: ignore[operator]
        add("max_null_rate", value.is_null(),
            f"{name}: missing value (the batch has {rate:.1%} nulls, above the contract's "
            f"max_null_rate {spec.max_null_rate:.1%})")
    if spec.type in ("integer", "float"):
        if spec.min is not None:
            add("min", (value < spec.min).fill_null(False),
                f"{name}: {SLOT} is below the minimum {_n(spec.min)}", name)
        if spec.max is not None:
            add("max", (value > spec.max).fill_null(False),
                f"{name}: {SLOT} is above the maximum {_n(spec.max)}", name)
    if spec.allowed is not None:
        known = pl.Series(list(spec.allowed), dtype=pl.String)
        add("allowed", value.is_not_null() & ~value.cast(pl.String).is_in(known.implode()),
            f"{name}: '{SLOT}' is not an allowed category", ORIGINAL + name)
    if spec.pattern is not None:
        matches = value.cast(pl.String).str.contains(f"^(?:{spec.pattern})$")
        add("pattern", value.is_not_null() & ~matches,
            f"{name}: '{SLOT}' does not match the pattern {spec.pattern}", ORIGINAL + name)
    if batch_rules and spec.unique:
        add("unique", value.is_not_null() & ~value.is_first_distinct(),
            f"{name}: {SLOT} is not unique (an earlier row has it)", name)
    return out


def _key(key: tuple[str, ...]) -> Check:
    import polars as pl

    whole = pl.all_horizontal([pl.col(k).is_not_null() for k in key])
    return Check(column=",".join(key), rule="key", severity="error",
                 mask=whole & ~pl.struct(list(key)).is_first_distinct(),
                 template=f"key ({', '.join(key)}): ({SLOT}) is not unique (an earlier row has it)",
                 shown=key)


def _rule(rule: Rule, contract: Contract) -> Check:
    """A rule over several columns: broken where its check is false (null passes)."""
    import polars as pl

    expr = rule_expr(rule)
    names = sorted(set(expr.meta.root_names()))
    unknown = [n for n in names if n not in contract]
    if unknown:
        raise SchemaError(
            f"Rule {rule.name!r} of contracts/{contract.source}.yaml reads columns {unknown} "
            "the contract does not list.",
            hint=f"A rule reads contract columns: {', '.join(contract.names)}.",
        )
    return Check(column="*", rule=rule.name, severity=rule.severity,
                 mask=(expr == pl.lit(False)).fill_null(False),
                 template=f"rule {rule.name}: {rule.check} is false ({SLOT})",
                 shown=tuple(names), labels=tuple(names))


def rule_expr(rule: Rule) -> pl.Expr:
    """The Polars expression of a rule's SQL check; a clear error if it does not parse."""
    import polars as pl

    try:
        return pl.sql_expr(rule.check)
    except Exception as exc:  # noqa: BLE001 - Polars raises several types for bad SQL
        raise SchemaError(
            f"Rule {rule.name!r}: cannot read its check {rule.check!r} as a SQL expression "
            f"({str(exc).splitlines()[0]}).",
            hint="Write a condition over the columns, e.g. arr_time >= dep_time.",
        ) from None


def _null_rate(values: pl.Series) -> float | None:
    """The share of nulls of a batch, or None for a batch too small to tell."""
    if values.len() < MIN_RATE_ROWS:
        return None
    return values.null_count() / values.len()


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
