"""The data contract: what every column of a source must look like.

A contract is a reviewed, committed YAML file (``contracts/<source>.yaml``). ``quality`` infers
it and validates every batch against it, ``features`` builds the feature pipeline from it, and
``serve`` derives its request model from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from loopml.core.errors import SchemaError, unknown_name

ColumnType = Literal["integer", "float", "boolean", "string", "category", "datetime", "date"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
NUMERIC_TYPES = frozenset({"integer", "float"})
SEVERITIES = ("error", "warn")  # error: the row goes to quarantine; warn: only reported
# a column's rules, by the name its ``severity`` mapping and the violations use
COLUMN_RULES = ("type", "not_null", "max_null_rate", "min", "max", "allowed", "pattern", "unique")
# a statistical rule warns unless the contract says otherwise; every other rule is an error
DEFAULT_SEVERITY = {"max_null_rate": "warn"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnSpec:
    """Expectations for one column.

    ``min``/``max`` are sanity bounds (rows outside them are quarantined), not the observed
    range: inference rounds the observed range outward to a power of ten so that values of a
    new season pass while sentinels (-999, 99999) and unit mistakes do not.
    """

    name: str
    type: ColumnType
    nullable: bool = True
    max_null_rate: float | None = None  # the largest share of nulls a batch may hold
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None  # for "category" columns
    frequencies: tuple[float, ...] | None = None  # each allowed category's share when inferred
    open: bool = False  # a category outside ``allowed`` warns instead of quarantining its row
    pattern: str | None = None  # every text value matches this regular expression in full
    unique: bool = False  # no value twice (nulls aside)
    severity: tuple[tuple[str, str], ...] = ()  # (rule, "error" | "warn") where not the default
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SchemaError(
                f"Column {self.name!r} has unknown type {self.type!r}.",
                hint=f"Use one of: {', '.join(COLUMN_TYPES)}.",
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"Column {self.name!r} has min {self.min} above max {self.max}.")
        if self.max_null_rate is not None and not 0 <= self.max_null_rate <= 1:
            raise SchemaError(
                f"Column {self.name!r} has max_null_rate {self.max_null_rate}: a share of rows.",
                hint="Write a number from 0 to 1 (0.05 allows 5% nulls in a batch).",
            )
        if self.frequencies is not None and (
            self.allowed is None or len(self.frequencies) != len(self.allowed)
        ):
            raise SchemaError(f"Column {self.name!r} has frequencies without their categories.")
        for rule, level in self.severity:
            if rule not in COLUMN_RULES:
                raise SchemaError(
                    unknown_name(f"rule of column {self.name!r}", rule, COLUMN_RULES),
                    hint="severity maps rule names to error or warn.",
                )
            if level not in SEVERITIES:
                raise SchemaError(
                    f"Column {self.name!r} gives rule {rule!r} severity {level!r}.",
                    hint="A severity is error (quarantine the row) or warn (only report).",
                )

    def severity_of(self, rule: str) -> str:
        """``error`` or ``warn`` for one of ``COLUMN_RULES`` (``open`` makes ``allowed`` warn)."""
        if rule == "allowed" and self.open:
            return "warn"
        return dict(self.severity).get(rule, DEFAULT_SEVERITY.get(rule, "error"))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form; a key appears only when set, so a contract written before a key
        existed keeps its fingerprint."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.max_null_rate is not None:
            out["max_null_rate"] = _plain_number(self.max_null_rate)
        if self.min is not None:
            out["min"] = _plain_number(self.min)
        if self.max is not None:
            out["max"] = _plain_number(self.max)
        if self.allowed is not None:
            out["allowed"] = (list(self.allowed) if self.frequencies is None else
                              dict(zip(self.allowed, self.frequencies, strict=True)))
        if self.open:
            out["open"] = True
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.unique:
            out["unique"] = True
        if self.severity:
            out["severity"] = dict(self.severity)
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ColumnSpec:
        known = {"name", "type", "nullable", "max_null_rate", "min", "max", "allowed", "open",
                 "pattern", "unique", "severity", "description"}
        extra = set(raw) - known
        if extra:
            raise SchemaError(
                f"Column entry {raw.get('name', '?')!r} has unknown keys {sorted(extra)}.",
                hint=f"A column entry takes: {', '.join(sorted(known))}.",
            )
        if "name" not in raw or "type" not in raw:
            raise SchemaError(f"Every column entry needs 'name' and 'type'; found {raw}.")
        allowed, frequencies = _categories(raw)
        severity = raw.get("severity") or {}
        if not isinstance(severity, dict):
            raise SchemaError(
                f"Column {raw['name']!r} has severity {severity!r}: a mapping is expected.",
                hint="Write e.g. severity: {max: warn}.",
            )
        return cls(
            name=str(raw["name"]),
            type=raw["type"],
            nullable=bool(raw.get("nullable", True)),
            max_null_rate=_number(raw, "max_null_rate"),
            min=_number(raw, "min"),
            max=_number(raw, "max"),
            allowed=allowed,
            frequencies=frequencies,
            open=bool(raw.get("open", False)),
            pattern=None if raw.get("pattern") is None else str(raw["pattern"]),
            unique=bool(raw.get("unique", False)),
            severity=tuple((str(k), str(v)) for k, v in severity.items()),
            description=str(raw.get("description", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A rule over several columns: a Polars SQL expression every row must make true, e.g.
    ``arr_time >= dep_time``. A row where it is null (a value missing) passes, as a SQL
    CHECK constraint does."""

    name: str
    check: str
    severity: str = "error"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.check.strip():
            raise SchemaError(f"Rule {self.name!r} needs a name and a check; found {self.check!r}.")
        if self.severity not in SEVERITIES:
            raise SchemaError(
                f"Rule {self.name!r} has severity {self.severity!r}.",
                hint="A severity is error (quarantine the row) or warn (only report).",
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "check": self.check}
        if self.severity != "error":
            out["severity"] = self.severity
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> Rule:
        known = {"name", "check", "severity", "description"}
        if not isinstance(raw, dict) or not {"name", "check"} <= set(raw) or set(raw) - known:
            raise SchemaError(
                f"A rule must be a mapping with 'name' and 'check'; found {raw!r}.",
                hint="Write e.g. {name: arrives_after_departure, check: arr_time >= dep_time}; "
                f"a rule takes: {', '.join(sorted(known))}.",
            )
        return cls(name=str(raw["name"]), check=str(raw["check"]),
                   severity=str(raw.get("severity", "error")),
                   description=str(raw.get("description", "")))


def _number(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"Column {raw.get('name', '?')!r} has {key} {value!r}: not a number.",
                          hint=f"Write {key} as a number, or remove it.") from None


def _categories(raw: dict[str, Any]) -> tuple[tuple[str, ...] | None, tuple[float, ...] | None]:
    """``allowed`` as a list of categories, or a mapping of each category to its share."""
    allowed = raw.get("allowed")
    if allowed is None:
        return None, None
    if isinstance(allowed, dict):
        shares = tuple(_share(raw["name"], v) for v in allowed.values())
        return tuple(str(a) for a in allowed), shares
    if isinstance(allowed, list):
        return tuple(str(a) for a in allowed), None
    raise SchemaError(
        f"Column {raw.get('name', '?')!r} has allowed {allowed!r}.",
        hint="List the categories, or map each to the share of rows it had.",
    )


def _share(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"Column {name!r}: a category's share {value!r} is not a number.",
                          hint="Map each allowed category to a number from 0 to 1.") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """The columns of one source, in order."""

    source: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()  # columns whose values together are unique
    rules: tuple[Rule, ...] = ()  # rules over several columns
    format_version: int = 1
    _index: dict[str, ColumnSpec] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"Contract for {self.source!r} lists columns twice: {dupes}.")
        object.__setattr__(self, "_index", {c.name: c for c in self.columns})
        unknown = [k for k in self.key if k not in self._index]
        if unknown:
            raise SchemaError(
                f"Contract for {self.source!r} has key columns {unknown} it does not list.",
                hint=f"A key names columns of the contract: {', '.join(names)}.",
            )
        rules = [r.name for r in self.rules]
        twice = sorted({n for n in rules if rules.count(n) > 1})
        if twice:
            raise SchemaError(f"Contract for {self.source!r} names rules twice: {twice}.")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def column(self, name: str) -> ColumnSpec:
        try:
            return self._index[name]
        except KeyError:
            raise SchemaError(
                unknown_name("column", name, self.names),
                hint=f"Check the spelling against contracts/{self.source}.yaml.",
            ) from None

    def select(self, names: list[str] | tuple[str, ...]) -> Contract:
        """A contract holding only ``names``, in that order (with the key and the rules that
        involve only those columns)."""
        keep = set(names)
        return replace(self, columns=tuple(self.column(n) for n in names),
                       key=self.key if keep >= set(self.key) else (),
                       rules=tuple(r for r in self.rules if keep >= rule_columns(r)))

    def with_column(self, spec: ColumnSpec) -> Contract:
        cols = tuple(spec if c.name == spec.name else c for c in self.columns)
        return replace(self, columns=cols)

    # ---- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "source": self.source,
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.key:
            out["key"] = list(self.key)
        if self.rules:
            out["rules"] = [r.to_dict() for r in self.rules]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Contract:
        if not isinstance(raw, dict) or "columns" not in raw or "source" not in raw:
            raise SchemaError(
                "A contract must be a mapping with 'source' and 'columns'.",
                hint="Re-create it with 'loopml init' or compare with a contract it wrote.",
            )
        cols = raw["columns"]
        if not isinstance(cols, list) or not all(isinstance(c, dict) for c in cols):
            raise SchemaError("A contract's 'columns' must be a list of column entries.")
        known = {"format_version", "source", "columns", "key", "rules"}
        if set(raw) - known:
            raise SchemaError(
                f"The contract has unknown keys {sorted(set(raw) - known)}.",
                hint=f"A contract takes: {', '.join(sorted(known))}.",
            )
        key, rules = raw.get("key") or [], raw.get("rules") or []
        if not isinstance(key, list) or not isinstance(rules, list):
            raise SchemaError("A contract's 'key' must list column names and 'rules' list rules.")
        return cls(
            source=str(raw["source"]),
            columns=tuple(ColumnSpec.from_dict(c) for c in cols),
            key=tuple(str(k) for k in key),
            rules=tuple(Rule.from_dict(r) for r in rules),
            format_version=int(raw.get("format_version", 1)),
        )

    def to_yaml(self) -> str:
        import yaml

        header = (
            f"# Data contract for source '{self.source}'. Review and commit it: every ingest is\n"
            "# validated against it, and rows that break it go to quarantine with a reason.\n"
            "# min/max are sanity bounds, allowed lists the categories a column may take (with\n"
            "# the share of rows each had), max_null_rate the share of nulls a batch may hold.\n"
            "# Also: pattern (a regular expression), unique, open (a new category warns),\n"
            "# severity (e.g. {max: warn}), and at the top key and rules (Polars SQL checks\n"
            "# over several columns, e.g. {name: ordered, check: end_at >= start_at}).\n"
        )
        return header + yaml.dump(
            self.to_dict(), Dumper=_dumper(), sort_keys=False, allow_unicode=True
        )

    @classmethod
    def from_yaml(cls, text: str) -> Contract:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"The contract is not valid YAML: {exc}") from exc
        return cls.from_dict(raw)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        path = Path(path)
        if not path.exists():
            raise SchemaError(
                f"No contract at {path}.",
                hint="Run 'loopml init' to infer one, or restore it from version control.",
            )
        return cls.from_yaml(path.read_text())

    def fingerprint(self) -> str:
        """sha256 of the canonical form: equal contracts have equal fingerprints."""
        import json

        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_AWKWARD = frozenset("\x85\u2028\u2029\ufeff") | {chr(c) for c in range(32)} | {"\x7f"}


def _dumper() -> type:
    """A safe YAML dumper that double-quotes (and so escapes) strings that would not survive
    a plain or single-quoted scalar: control characters, Unicode line breaks, a BOM."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = '"' if any(ch in _AWKWARD for ch in value) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def rule_columns(rule: Rule) -> set[str]:
    """The columns a rule's check reads (empty when it does not parse: ``check_contract``
    reports that)."""
    import polars as pl

    try:
        return set(pl.sql_expr(rule.check).meta.root_names())
    except Exception:  # noqa: BLE001 - Polars raises several types for a bad expression
        return set()


def _plain_number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


PROVENANCE_COLUMNS = ("_ingest_id", "_ingested_at", "_source_file", "_source_row")
"""Columns loopml adds to lake rows to say where each came from; never features."""


def polars_dtype(column_type: str) -> Any:
    """The Polars type a contract column type is held in. Datetimes are UTC.

    >>> str(polars_dtype("integer"))
    'Int64'
    """
    import polars as pl

    return {
        "integer": pl.Int64,
        "float": pl.Float64,
        "boolean": pl.Boolean,
        "string": pl.String,
        "category": pl.String,
        "datetime": pl.Datetime("us", "UTC"),
        "date": pl.Date,
    }[column_type]


def polars_schema(contract: Contract, names: tuple[str, ...] | list[str] | None = None) -> Any:
    """A Polars schema for ``names`` (default: every column) of ``contract``."""
    import polars as pl

    names = contract.names if names is None else names
    return pl.Schema({n: polars_dtype(contract.column(n).type) for n in names})
