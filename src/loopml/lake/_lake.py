"""A folder (or object-store prefix) of Delta tables addressed as ``zone/name``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeConflictError, LakeError, first_line, unknown_name
from loopml.core.records import TableRef

if TYPE_CHECKING:
    import polars as pl

ZONES = ("raw", "clean", "quarantine", "predictions", "feedback", "monitoring", "deadletter")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
# the dead-letter zone mirrors the zone of the table whose rows could not be written:
# ``deadletter/predictions/flights``
_DEAD_LETTER = "deadletter"


def table_name(zone: str, name: str) -> str:
    """The lake name of a table: ``table_name("raw", "flights") == "raw/flights"``."""
    if zone not in ZONES:
        raise LakeError(unknown_name("lake zone", zone, ZONES))
    if zone == _DEAD_LETTER:
        inner, _, rest = name.partition("/")
        if inner in ZONES and inner != _DEAD_LETTER and _NAME.match(rest):
            return f"{zone}/{name}"
        raise LakeError(
            f"Dead-letter table name {name!r} is not allowed.",
            hint="Name it after the table whose rows it keeps, e.g. 'predictions/flights'.",
        )
    if not _NAME.match(name):
        raise LakeError(
            f"Table name {name!r} is not allowed.",
            hint="Use letters, digits, '_' and '-', starting with a letter.",
        )
    return f"{zone}/{name}"


class Lake:
    """Delta tables under one root URI. Every write is one atomic commit with a version.

    Local paths and any URI Delta supports (``s3://``, ``gs://``, ``az://``) work the same;
    ``storage_options`` go to delta-rs unchanged.
    """

    def __init__(self, uri: str | Path, *, storage_options: dict[str, str] | None = None):
        self.uri = str(uri)
        self.storage_options = storage_options
        self._local = "://" not in self.uri
        if self._local:
            Path(self.uri).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def path(self, table: str) -> str:
        zone, _, name = table.partition("/")
        table_name(zone, name)  # validates
        if self._local:
            return str(Path(self.uri).resolve() / zone / name)
        return f"{self.uri.rstrip('/')}/{zone}/{name}"

    # ---- writing ------------------------------------------------------------------------

    def append(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        metadata: dict[str, str] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> TableRef:
        """Append ``frame`` as one commit (new columns are added to the table's schema).

        ``metadata`` is stored with the commit (see ``history``); prefix keys with
        ``loopml.`` - delta-rs reserves some plain names such as ``operation``.
        ``partition_by`` applies when the append creates the table.
        """
        return self._write(table, frame, mode="append", metadata=metadata,
                           partition_by=partition_by)

    def overwrite(
        self, table: str, frame: pl.DataFrame, *, metadata: dict[str, str] | None = None
    ) -> TableRef:
        """Replace the table's rows as one commit; earlier versions stay readable."""
        return self._write(table, frame, mode="overwrite", metadata=metadata)

    def merge(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        keys: Sequence[str],
        metadata: dict[str, str] | None = None,
    ) -> TableRef:
        """Upsert ``frame`` by ``keys`` as one commit (a Delta MERGE): rows whose keys are in
        the table replace it, the others are inserted; a missing table is created.

        Merging the same rows twice changes nothing; when ``frame`` holds one key twice, its
        last row wins.

        >>> import tempfile, polars as pl
        >>> lake = Lake(tempfile.mkdtemp())
        >>> _ = lake.merge("feedback/m", pl.DataFrame({"k": [1, 2], "v": ["a", "b"]}), keys=["k"])
        >>> _ = lake.merge("feedback/m", pl.DataFrame({"k": [2, 3], "v": ["B", "c"]}), keys=["k"])
        >>> lake.read("feedback/m").sort("k")["v"].to_list()
        ['a', 'B', 'c']
        """
        from deltalake import CommitProperties, DeltaTable

        keys = list(keys)
        missing = [k for k in keys if k not in frame.columns]
        if not keys or missing:
            raise LakeError(
                f"Cannot merge into {table}: the key column(s) {missing or keys} are not in the "
                f"batch (columns: {', '.join(frame.columns)}).",
                hint="Name key columns that the batch has.",
            )
        path = self.path(table)
        existing = self._existing_schema(path)
        data = frame.unique(keys, keep="last", maintain_order=True)
        if existing is None:
            return self._write(table, data, mode="append", metadata=metadata)
        if data.height == 0:
            return self.ref(table)
        data = _delta_compatible(data, existing).rechunk()
        props = CommitProperties(custom_metadata={k: str(v) for k, v in (metadata or {}).items()})
        predicate = " AND ".join(f'target."{k}" = source."{k}"' for k in keys)
        try:
            dt = DeltaTable(path, storage_options=self.storage_options)
            (
                dt.merge(
                    data.to_arrow(),
                    predicate,
                    source_alias="source",
                    target_alias="target",
                    merge_schema=True,
                    commit_properties=props,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        except Exception as exc:  # delta-rs raises several types for the same cause
            raise LakeError(
                f"Merging {frame.height} row(s) into {table} failed: {first_line(exc)}",
                hint="Cast the columns to the table's types, or write to a new table.",
            ) from exc
        return self.ref(table)

    def _write(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        mode: str,
        metadata: dict[str, str] | None,
        partition_by: Sequence[str] | None = None,
    ) -> TableRef:
        from deltalake import CommitProperties, write_deltalake
        from deltalake.exceptions import SchemaMismatchError

        path = self.path(table)
        existing = self._existing_schema(path) if mode == "append" else None
        data = _delta_compatible(frame, existing)
        data = data.rechunk()  # delta-rs may reorder the rows of a many-chunk batch
        props = CommitProperties(custom_metadata={k: str(v) for k, v in (metadata or {}).items()})
        try:
            write_deltalake(
                path,
                data.to_arrow(),
                mode=mode,  # type: ignore[arg-type]
                schema_mode="merge" if mode == "append" else "overwrite",
                storage_options=self.storage_options,
                commit_properties=props,
                partition_by=list(partition_by) if partition_by and existing is None else None,
            )
        except SchemaMismatchError as exc:
            raise LakeConflictError(
                f"Cannot append to {table}: the batch's column types differ from the table's "
                f"({first_line(exc)}).",
                hint="Cast the columns to the table's types, or write to a new table.",
            ) from exc
        except Exception as exc:  # delta-rs raises bare Exceptions for arrow cast errors
            if "cast" in str(exc).lower():
                raise LakeConflictError(
                    f"Cannot append to {table}: a column's values do not fit the table's type "
                    f"({first_line(exc)}).",
                    hint="Cast the columns to the table's types, or write to a new table.",
                ) from exc
            raise LakeError(f"Writing {table} at {path} failed: {first_line(exc)}") from exc
        version = self.version(table)
        assert version is not None
        return TableRef(name=table, version=version)

    def _existing_schema(self, path: str) -> dict[str, Any] | None:
        dt = self._open(path, None, missing_ok=True)
        if dt is None:
            return None
        import polars as pl
        import pyarrow as pa

        empty = pa.schema(dt.schema().to_arrow()).empty_table()  # delta-rs returns arro3
        return dict(pl.from_arrow(empty).schema)  # type: ignore[union-attr]

    # ---- reading ------------------------------------------------------------------------

    def read(
        self, table: str, *, version: int | None = None, columns: list[str] | None = None
    ) -> pl.DataFrame:
        """Read a table, at ``version`` if given (time travel), else the latest."""
        import polars as pl

        dt = self._open(self.path(table), version)
        try:
            arrow = dt.to_pyarrow_table(columns=columns)
        except Exception as exc:  # delta-rs raises several types for the same cause
            raise LakeError(f"Reading {table} failed: {first_line(exc)}") from exc
        out = pl.from_arrow(arrow)
        assert isinstance(out, pl.DataFrame)
        return out

    def scan(self, table: str, *, version: int | None = None) -> pl.LazyFrame:
        """A lazy view of a table for large reads (Polars streams it)."""
        import polars as pl

        dt = self._open(self.path(table), version)
        return pl.scan_delta(dt)

    def exists(self, table: str) -> bool:
        return self.version(table) is not None

    def version(self, table: str) -> int | None:
        """The latest version of a table, or None if it does not exist."""
        dt = self._open(self.path(table), None, missing_ok=True)
        return None if dt is None else dt.version()

    def ref(self, table: str) -> TableRef:
        version = self.version(table)
        if version is None:
            raise self._missing(table)
        return TableRef(name=table, version=version)

    def rows(self, table: str, *, version: int | None = None) -> int:
        dt = self._open(self.path(table), version)
        return int(dt.count()) if hasattr(dt, "count") else self.read(table, version=version).height

    def history(self, table: str) -> list[dict[str, Any]]:
        """Commits, newest first: version, timestamp, operation and our commit metadata."""
        dt = self._open(self.path(table), None)
        return list(dt.history())

    def tables(self) -> list[str]:
        """Every table in the lake as ``zone/name`` (local lakes only)."""
        if not self._local:
            raise LakeError("Listing tables works on local lakes only.")
        root = Path(self.uri)
        found = []
        for zone in ZONES:
            pattern = "*/*/_delta_log" if zone == _DEAD_LETTER else "*/_delta_log"
            for p in sorted((root / zone).glob(pattern)):
                found.append(p.parent.relative_to(root).as_posix())
        return found

    def _open(self, path: str, version: int | None, *, missing_ok: bool = False) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            return DeltaTable(path, version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            if missing_ok and version is None:
                return None
            table = "/".join(Path(path).parts[-2:]) if self._local else path
            raise self._missing(table) from None
        except (DeltaError, OSError, ValueError) as exc:
            if version is not None:
                latest = self._open(path, None, missing_ok=True)
                if latest is not None and (version < 0 or version > latest.version()):
                    raise LakeError(
                        f"Table {path} has no version {version}; "
                        f"versions run from 0 to {latest.version()}."
                    ) from None
                raise LakeError(f"Cannot open {path} at version {version}: {first_line(exc)}") from exc
            raise LakeError(f"Cannot open {path}: {first_line(exc)}") from exc

    def _missing(self, table: str) -> LakeError:
        existing = self.tables() if self._local else []
        return LakeError(
            unknown_name("table", table, existing) if existing else f"No table {table} yet.",
            hint="Tables appear when data is first ingested ('loopml run').",
        )


def _delta_compatible(frame: pl.DataFrame, existing: dict[str, Any] | None) -> pl.DataFrame:
    """Cast types Delta cannot store (unsigned, null, categorical, ns/tz times) to ones it can,
    and to the existing table's type where the value is kept exactly."""
    import polars as pl

    casts = {}
    for name, dtype in frame.schema.items():
        target = dtype
        if dtype == pl.Null:
            target = pl.String
        elif dtype in (pl.UInt8, pl.UInt16):
            target = pl.Int32
        elif dtype in (pl.UInt32, pl.UInt64):
            target = pl.Int64
        elif isinstance(dtype, (pl.Categorical, pl.Enum)):
            target = pl.String
        elif isinstance(dtype, pl.Datetime):
            target = pl.Datetime("us", "UTC" if dtype.time_zone else None)
        elif dtype == pl.Time:
            target = pl.String
        if existing and name in existing and existing[name] != target:
            wanted = existing[name]
            if _widens(target, wanted):
                target = wanted
        if target != dtype:
            casts[name] = target
    if not casts:
        return frame
    out = frame
    for name, target in casts.items():
        col = pl.col(name)
        if isinstance(target, pl.Datetime) and target.time_zone:
            col = col.dt.convert_time_zone("UTC")
        out = out.with_columns(col.cast(target))
    return out


def _widens(source: Any, target: Any) -> bool:
    import polars as pl

    ints = [pl.Int8, pl.Int16, pl.Int32, pl.Int64]
    if source in ints and (target in ints[ints.index(source) :] or target == pl.Float64):
        return True
    if source == pl.Float32 and target == pl.Float64:
        return True
    return source == pl.Null
