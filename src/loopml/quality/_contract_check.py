"""``check_contract``: every mistake in a contract file, each explained, not only the first.

Loading a contract stops at its first error; a person fixing a file wants the whole list: YAML
syntax (with the line), unknown keys and types, bounds, regular expressions Polars cannot
compile, rules whose SQL does not parse, reads unknown columns or is not a condition, and
settings that have no effect (``min`` on a text column, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.core.contract import NUMERIC_TYPES, ColumnSpec, Contract, Rule, polars_schema
from loopml.core.errors import LoopmlError


def check_contract(path: str | Path) -> list[str]:
    """The mistakes in the contract file at ``path``, each a sentence saying what is wrong
    and how to fix it; empty when the contract is sound.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
    >>> _ = p.write_text("source: s\\ncolumns:\\n- {name: a, type: integer, pattern: '[a-'}\\n")
    >>> check_contract(p)  # doctest: +ELLIPSIS
    ["column 'a': pattern '[a-' is not a valid regular expression (...). ..."]
    """
    import yaml

    path = Path(path)
    if not path.exists():
        return [f"{path} does not exist: run 'loopml init' to infer a contract."]
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return [f"not valid YAML{where}: {problem}."]
    except UnicodeDecodeError:
        return [f"{path} is not UTF-8 text: save it as UTF-8."]
    if not isinstance(raw, dict) or "columns" not in raw or "source" not in raw:
        return ["a contract is a mapping with 'source' and 'columns' (and optionally 'key' "
                "and 'rules'); compare with a contract 'loopml init' wrote."]
    problems: list[str] = []
    columns = _columns(raw.get("columns"), problems)
    rules = _rules(raw.get("rules") or [], problems)
    try:  # the rules are checked against the columns that are sound
        readable = Contract(source=str(raw["source"]), columns=tuple(columns))
    except LoopmlError as exc:
        return [*problems, _sentence(exc)]
    for rule in rules:
        problems.extend(_rule_problems(rule, readable))
    if not problems:
        try:
            Contract.from_dict(raw)  # the key, rule names and anything not covered above
        except LoopmlError as exc:
            problems.append(_sentence(exc))
    return problems


def _columns(entries: Any, problems: list[str]) -> list[ColumnSpec]:
    if not isinstance(entries, list) or not all(isinstance(c, dict) for c in entries):
        problems.append("'columns' must be a list of column entries (name, type, ...).")
        return []
    out: list[ColumnSpec] = []
    for i, entry in enumerate(entries):
        label = f"column {entry.get('name', f'#{i + 1}')!r}"
        try:
            spec = ColumnSpec.from_dict(entry)
        except LoopmlError as exc:
            problems.append(f"{label}: {_sentence(exc)}")
            continue
        out.append(spec)
        problems.extend(f"{label}: {p}" for p in _column_problems(spec))
    return out


def _column_problems(spec: ColumnSpec) -> list[str]:
    """Settings that are valid YAML but wrong or without effect."""
    import polars as pl

    out = []
    numeric = spec.type in NUMERIC_TYPES
    if not numeric and (spec.min is not None or spec.max is not None):
        out.append(f"min and max apply to integer and float columns, not {spec.type}: "
                   "remove them or change the type.")
    if spec.allowed is not None and spec.type not in ("category", "string"):
        out.append(f"allowed applies to category columns, not {spec.type}.")
    if spec.open and spec.allowed is None:
        out.append("open only matters with allowed categories: list them or remove open.")
    if not spec.nullable and spec.max_null_rate not in (None, 0):
        out.append(f"nullable is false but max_null_rate is {spec.max_null_rate}: a column "
                   "that may hold no null has no null rate to bound; remove one of them.")
    if spec.frequencies is not None and sum(spec.frequencies) > 1.01:
        out.append(f"the shares of the allowed categories add up to {sum(spec.frequencies):.2f}, "
                   "more than 1: they are shares of the rows, from 0 to 1.")
    if spec.pattern is not None:
        try:
            pl.Series([""], dtype=pl.String).str.contains(spec.pattern)
        except Exception as exc:  # noqa: BLE001 - Polars raises ComputeError for a bad regex
            out.append(f"pattern {spec.pattern!r} is not a valid regular expression "
                       f"({_first(exc)}). Fix the expression (Rust regex syntax).")
    return out


def _rules(entries: Any, problems: list[str]) -> list[Rule]:
    if not isinstance(entries, list):
        problems.append("'rules' must be a list of {name, check, severity} entries.")
        return []
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(Rule.from_dict(entry))
        except LoopmlError as exc:
            problems.append(f"rule #{i + 1}: {_sentence(exc)}")
    return out


def _rule_problems(rule: Rule, contract: Contract) -> list[str]:
    """A rule's SQL must parse, read contract columns only, and be a condition."""
    import polars as pl

    from loopml.quality._checks import rule_expr

    label = f"rule {rule.name!r}"
    try:
        expr = rule_expr(rule)
    except LoopmlError as exc:
        return [f"{label}: {_sentence(exc)}"]
    unknown = sorted(set(expr.meta.root_names()) - set(contract.names))
    if unknown:
        return [f"{label} reads {unknown}, which the contract does not list "
                f"(columns: {', '.join(contract.names)})."]
    nulls = pl.DataFrame([pl.Series(n, [None], dtype=t)
                          for n, t in polars_schema(contract).items()])
    try:  # on one row of nulls: Polars checks the types as it evaluates
        kind = nulls.select(expr).to_series().dtype
    except Exception as exc:  # noqa: BLE001 - a type error in the expression
        return [f"{label}: {rule.check!r} cannot be evaluated on the contract's types "
                f"({_first(exc)})."]
    if kind != pl.Boolean:
        return [f"{label}: {rule.check!r} gives {kind}, not true or false; write a "
                "condition (e.g. with >=, =, BETWEEN, IS NOT NULL)."]
    return []


def _sentence(exc: LoopmlError) -> str:
    return exc.message + (f" {exc.hint}" if exc.hint else "")


def _first(exc: BaseException) -> str:
    """The telling line of a Polars error (a regex error ends with what is wrong)."""
    lines = [line.strip() for line in str(exc).split("This error occurred")[0].splitlines()
             if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1].removeprefix("error: ") if lines[0].startswith("regex") else lines[0]
