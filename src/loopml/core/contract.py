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
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None  # for "category" columns
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SchemaError(
                f"Column {self.name!r} has unknown type {self.type!r}.",
                hint=f"Use one of: {', '.join(COLUMN_TYPES)}.",
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"Column {self.name!r} has min {self.min} above max {self.max}.")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.min is not None:
            out["min"] = _plain_number(self.min)
        if self.max is not None:
            out["max"] = _plain_number(self.max)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ColumnSpec:
        known = {"name", "type", "nullable", "min", "max", "allowed", "description"}
        extra = set(raw) - known
        if extra:
            raise SchemaError(
                f"Column entry {raw.get('name', '?')!r} has unknown keys {sorted(extra)}.",
                hint=f"A column entry takes: {', '.join(sorted(known))}.",
            )
        if "name" not in raw or "type" not in raw:
            raise SchemaError(f"Every column entry needs 'name' and 'type'; found {raw}.")
        allowed = raw.get("allowed")
        return cls(
            name=str(raw["name"]),
            type=raw["type"],
            nullable=bool(raw.get("nullable", True)),
            min=None if raw.get("min") is None else float(raw["min"]),
            max=None if raw.get("max") is None else float(raw["max"]),
            allowed=None if allowed is None else tuple(str(a) for a in allowed),
            description=str(raw.get("description", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """The columns of one source, in order."""

    source: str
    columns: tuple[ColumnSpec, ...]
    format_version: int = 1
    _index: dict[str, ColumnSpec] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"Contract for {self.source!r} lists columns twice: {dupes}.")
        object.__setattr__(self, "_index", {c.name: c for c in self.columns})

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
        """A contract holding only ``names``, in that order."""
        return replace(self, columns=tuple(self.column(n) for n in names))

    def with_column(self, spec: ColumnSpec) -> Contract:
        cols = tuple(spec if c.name == spec.name else c for c in self.columns)
        return replace(self, columns=cols)

    # ---- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "source": self.source,
            "columns": [c.to_dict() for c in self.columns],
        }

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
        return cls(
            source=str(raw["source"]),
            columns=tuple(ColumnSpec.from_dict(c) for c in cols),
            format_version=int(raw.get("format_version", 1)),
        )

    def to_yaml(self) -> str:
        import yaml

        header = (
            f"# Data contract for source '{self.source}'. Review and commit it: every ingest is\n"
            "# validated against it, and rows that break it go to quarantine with a reason.\n"
            "# min/max are sanity bounds, allowed lists the categories a column may take.\n"
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
