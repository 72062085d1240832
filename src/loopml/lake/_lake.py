"""A folder (or object-store prefix) of Delta tables addressed as ``zone/name``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import (
    LakeCommittedError,
    LakeCommitUnknownError,
    LakeConflictError,
    LakeError,
    first_line,
    unknown_name,
)
from loopml.core.records import TablePart, TableRef
from loopml.lake._append import after_commit, append_file, create_file, no_hooks, with_metrics
from loopml.lake._handles import Handles
from loopml.lake._timetravel import commit_at
from loopml.lake._types import aligned, delta_compatible, plain_type, polars_schema

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake._maintain import OptimizeResult
    from loopml.lake._stage import StagedAppend

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
        self._handles = Handles(local=self._local)
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
        ``partition_by`` names the columns a new table is partitioned by; a table's
        partitioning is fixed when it is created, and asking for another one is a ``LakeError``
        (not a ``LakeConflictError``: no row's type is at fault).
        """
        return self._write(table, frame, mode="append", metadata=metadata,
                           partition_by=partition_by)

    def staged(self, table: str, *, metadata: dict[str, str] | None = None) -> StagedAppend:
        """Many batches appended as one commit: ``with lake.staged(t) as s: s.add(frame)``
        writes each batch as it comes and commits them together on leaving the block (see
        ``_stage``); an error in the block commits nothing."""
        from loopml.lake._stage import StagedAppend

        return StagedAppend(self, table, metadata)

    def overwrite(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        metadata: dict[str, str] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> TableRef:
        """Replace the table's rows as one commit; earlier versions stay readable."""
        return self._write(table, frame, mode="overwrite", metadata=metadata,
                           partition_by=partition_by)

    def merge(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        keys: Sequence[str],
        metadata: dict[str, str] | None = None,
        partition_by: Sequence[str] | None = None,
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
        from loopml.lake._append import merge_rows

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
            return self._write(table, data, mode="append", metadata=metadata,
                               partition_by=partition_by)
        self._check_partitioning(table, path, frame, partition_by)
        if data.height:
            merge_rows(table, path, delta_compatible(data, existing).rechunk(), keys,
                       metadata=metadata, storage_options=self.storage_options)
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
        path = self.path(table)
        with self._latest(path) as dt:
            return self._write_to(table, path, dt, frame, mode=mode, metadata=metadata,
                                  partition_by=partition_by)

    def _write_to(
        self, table: str, path: str, dt: Any, frame: pl.DataFrame, *, mode: str,
        metadata: dict[str, str] | None, partition_by: Sequence[str] | None,
    ) -> TableRef:
        import polars as pl
        from deltalake import CommitProperties, write_deltalake
        from deltalake.exceptions import SchemaMismatchError

        partitions = self._check_partitioning(table, path, frame, partition_by, dt=dt)
        existing = self._existing_schema(path, dt) if mode == "append" and dt is not None else None
        custom = {k: str(v) for k, v in (metadata or {}).items()}
        if existing and self._local and not partitions and frame.height:
            same = aligned(frame, existing)  # the table's columns and types: no schema change
            if same is not None:
                append_file(dt, path, same, custom)
                return self._committed(table, path, dt, frame.height)
        if dt is None and self._local and not partitions and frame.height:
            first = delta_compatible(frame, None)
            if all(plain_type(t) for t in first.schema.values()):
                try:
                    create_file(path, first, custom)
                except LakeCommitUnknownError:
                    raise
                except Exception as exc:  # e.g. another process made the table meanwhile
                    raise LakeError(f"Creating {table} at {path} failed: {first_line(exc)}",
                                    hint="Try again: the table may exist now.") from exc
                return TableRef(name=table, version=0)
        data = delta_compatible(frame, existing)
        data = data.rechunk()  # delta-rs may reorder the rows of a many-chunk batch
        props = CommitProperties(custom_metadata=custom)
        try:
            write_deltalake(
                path if dt is None else dt,  # an open table is brought to the new version
                # string and binary views as Polars holds them: no copy (Delta stores them as
                # string and binary all the same)
                data.to_arrow(compat_level=pl.CompatLevel.newest()),
                mode=mode,  # type: ignore[arg-type]
                schema_mode="merge" if mode == "append" else "overwrite",
                partition_by=partitions,
                storage_options=self.storage_options,
                commit_properties=props,
                post_commithook_properties=no_hooks(),
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
            # delta-rs writes the data files and commits in one call: the commit may have
            # landed before the error
            raise LakeCommitUnknownError(
                f"Writing {table} at {path} failed, and the commit may have landed: "
                f"{first_line(exc)}",
                hint="Look for the commit's metadata in the table's history (commit_with) "
                "before writing the rows again.",
            ) from exc
        return self._committed(table, path, dt, frame.height)

    def _committed(self, table: str, path: str, dt: Any, rows: int) -> TableRef:
        """The table's new version after a commit that landed, with the post-commit hooks run
        (see ``after_commit``). A failure from here on is a ``LakeCommittedError``: it must
        not look like a failed write, or a retry would store the rows twice."""
        try:
            if dt is None:
                dt = self._open(path, None)
            else:
                dt.update_incremental()
            after_commit(dt)
        except Exception as exc:
            raise LakeCommittedError(
                f"{rows} row(s) were committed to {table}, but the table could not be read "
                f"afterwards: {first_line(exc)}",
                hint="Do not write these rows again; check that the lake is reachable.",
            ) from exc
        return TableRef(name=table, version=dt.version())

    def _check_partitioning(
        self, table: str, path: str, frame: pl.DataFrame, partition_by: Sequence[str] | None,
        *, dt: Any = False,
    ) -> list[str] | None:
        """The partition columns to write with: the existing table's, or ``partition_by`` for a
        new table; asking for other columns than the table has is a ``LakeError``."""
        wanted = None if partition_by is None else list(partition_by)
        missing = [c for c in wanted or [] if c not in frame.columns]
        if missing:
            raise LakeError(
                f"Cannot partition {table} by {missing}: the batch has no such column "
                f"(columns: {', '.join(frame.columns)}).",
                hint="Name columns of the data in partition_by.",
            )
        if dt is False:  # not opened by the caller
            dt = self._open(path, None, missing_ok=True)
        if dt is None:
            return wanted or None
        have = list(dt.metadata().partition_columns)
        if wanted is not None and wanted != have:
            raise LakeError(
                f"Table {table} is partitioned by {have or 'nothing'}, not {wanted}: a table's "
                "partitioning is fixed when it is created.",
                hint=f"Set partition_by back to {have}, or write to a new table.",
            )
        return have or None

    def partition_columns(self, table: str) -> list[str]:
        """The columns a table is partitioned by (empty if none)."""
        return list(self._open(self.path(table), None).metadata().partition_columns)

    def _existing_schema(self, path: str, dt: Any = None) -> dict[str, Any] | None:
        dt = dt if dt is not None else self._open(path, None, missing_ok=True)
        return None if dt is None else polars_schema(dt)

    def as_read(self, table: str, frame: pl.DataFrame, *, version: int) -> pl.DataFrame | None:
        """The rows of ``frame``, just appended to ``table`` as ``version``, exactly as reading
        that commit's rows back gives them (the table's columns in its order and types, the
        ones ``frame`` lacks null) without reading them; None when that cannot be vouched for:
        ``version`` is no longer the latest, the commit wrote more than one file or another
        row count, the table is partitioned, or a column's type is not a plain one whose
        values Delta stores unchanged. Then read the rows back.
        """
        with self._latest(self.path(table)) as dt:
            if dt is None or dt.version() != version or dt.metadata().partition_columns:
                return None
            commit = (dt.history(1) or [{}])[0]
            schema = polars_schema(dt)
        metrics = with_metrics(commit).get("operationMetrics") or {}
        if (commit.get("version") != version or metrics.get("num_added_files") != 1
                or metrics.get("num_added_rows") != frame.height):
            return None
        return aligned(frame, schema)

    def as_appended(self, table: str, frame: pl.DataFrame) -> pl.DataFrame | None:
        """What ``as_read`` will give for ``frame`` once appended to ``table``, predicted
        before the append (the table's columns, then ``frame``'s new ones); None where
        ``as_read`` would decline. A prediction is right when its columns and types are the
        ones ``as_read`` gives after the append: both are the same function of ``frame``."""
        with self._latest(self.path(table)) as dt:
            if dt is not None and dt.metadata().partition_columns:
                return None
            before = {} if dt is None else polars_schema(dt)
        after = dict(before)
        for name, dtype in delta_compatible(frame, before or None).schema.items():
            after.setdefault(name, dtype)
        return aligned(frame, after)

    # ---- reading ------------------------------------------------------------------------

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        as_of: datetime | str | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        """Read a table, at ``version`` or as it was at time ``as_of`` if given (time travel),
        else the latest. ``as_of`` is a datetime or ISO text; a time without offset is UTC."""
        import polars as pl

        dt = self._open(self.path(table), self._version_at(table, version, as_of))
        try:
            arrow = dt.to_pyarrow_table(columns=columns)
        except Exception as exc:  # delta-rs raises several types for the same cause
            hint = None
            if version is not None or as_of is not None:
                hint = ("'loopml lake optimize' vacuums the files of versions older than "
                        "storage.retention_hours; read a newer version.")
            raise LakeError(f"Reading {table} failed: {first_line(exc)}", hint=hint) from exc
        out = pl.from_arrow(arrow)
        assert isinstance(out, pl.DataFrame)
        return out

    def scan(
        self, table: str, *, version: int | None = None, as_of: datetime | str | None = None
    ) -> pl.LazyFrame:
        """A lazy view of a table for large reads (Polars streams it)."""
        import polars as pl

        dt = self._open(self.path(table), self._version_at(table, version, as_of))
        return pl.scan_delta(dt)

    def parts(self, table: str, *, version: int | None = None) -> tuple[TablePart, ...]:
        """The Parquet files of a table version (default: the latest), in the order ``read``
        gives their rows; ``read_part`` reads one, anywhere the lake is reachable from."""
        from loopml.lake._parts import parts_of

        return parts_of(self._open(self.path(table), version), table)

    def read_part(self, part: TablePart, *, columns: list[str] | None = None) -> pl.DataFrame:
        """The rows of one of ``parts``, with the table's columns and types (only
        ``columns`` when given)."""
        from loopml.lake._parts import read_part

        return read_part(self._open(self.path(part.table), part.version), part, columns)

    def exists(self, table: str) -> bool:
        return self.version(table) is not None

    def version(self, table: str) -> int | None:
        """The latest version of a table, or None if it does not exist."""
        with self._latest(self.path(table)) as dt:
            return None if dt is None else dt.version()

    def ref(self, table: str) -> TableRef:
        version = self.version(table)
        if version is None:
            raise self._missing(table)
        return TableRef(name=table, version=version)

    def rows(
        self, table: str, *, version: int | None = None, as_of: datetime | str | None = None
    ) -> int:
        version = self._version_at(table, version, as_of)
        dt = self._open(self.path(table), version)
        return int(dt.count()) if hasattr(dt, "count") else self.read(table, version=version).height

    def version_at(self, table: str, as_of: datetime | str) -> int:
        """The version a table had at time ``as_of`` (a datetime, or ISO text; UTC if it has no
        offset): the newest commit at or before it.

        >>> import tempfile, polars as pl
        >>> lake = Lake(tempfile.mkdtemp())
        >>> _ = lake.append("raw/t", pl.DataFrame({"x": [1]}))
        >>> lake.version_at("raw/t", "2999-01-01T00:00:00")
        0
        """
        return commit_at(self._open(self.path(table), None), table, as_of)

    def _version_at(
        self, table: str, version: int | None, as_of: datetime | str | None
    ) -> int | None:
        if as_of is None:
            return version
        if version is not None:
            raise LakeError("Give a version or a time (as_of) to read, not both.")
        return self.version_at(table, as_of)

    def history(self, table: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first: version, timestamp, operation and our commit metadata
        (the newest ``limit`` only, when given: Delta then reads only those log entries)."""
        dt = self._open(self.path(table), None)
        return [with_metrics(c) for c in dt.history(limit)]

    def commit_with(self, table: str, key: str, value: str, *,
                    since: int | None = None) -> int | None:
        """The version of the newest commit to ``table`` after version ``since`` (any, when
        None) whose metadata holds ``key`` = ``value``, or None (also when the table does not
        exist). Reads only the log entries after ``since``; entries older than the table's
        log retention are gone, so look for recent commits only.

        >>> import tempfile, polars as pl
        >>> lake = Lake(tempfile.mkdtemp())
        >>> _ = lake.append("raw/t", pl.DataFrame({"x": [1]}), metadata={"loopml.id": "a"})
        >>> _ = lake.append("raw/t", pl.DataFrame({"x": [2]}), metadata={"loopml.id": "b"})
        >>> lake.commit_with("raw/t", "loopml.id", "a")
        0
        >>> lake.commit_with("raw/t", "loopml.id", "a", since=0) is None
        True
        """
        latest = self.version(table)
        first = 0 if since is None else since + 1  # the oldest version to look at
        if latest is None or latest < first:
            return None
        limit = latest - first + 1
        while True:  # commits made meanwhile push the oldest wanted ones past the limit
            commits = self.history(table, limit=limit)
            for commit in commits:
                if int(commit["version"]) >= first and commit.get(key) == value:
                    return int(commit["version"])
            oldest = min((int(c["version"]) for c in commits), default=first)
            if oldest <= first or len(commits) < limit:  # seen all, or the rest expired
                return None
            limit += oldest - first

    def tables(self) -> list[str]:
        """Every table in the lake as ``zone/name`` (local and ``s3://`` lakes)."""
        if not self._local:
            from loopml.lake._store import list_tables

            return list_tables(self.uri, self.storage_options, ZONES, _DEAD_LETTER)
        root = Path(self.uri)
        found = []
        for zone in ZONES:
            pattern = "*/*/_delta_log" if zone == _DEAD_LETTER else "*/_delta_log"
            for p in sorted((root / zone).glob(pattern)):
                found.append(p.parent.relative_to(root).as_posix())
        return found

    # ---- maintenance and SQL ----------------------------------------------------------------

    def optimize(
        self, table: str, *, retention_hours: int = 168, metadata: dict[str, str] | None = None
    ) -> OptimizeResult:
        """Compact a table's small files into larger ones (a new version with the same rows),
        then vacuum the files that no version younger than ``retention_hours`` needs.

        >>> import tempfile, polars as pl
        >>> lake = Lake(tempfile.mkdtemp())
        >>> for x in range(3):
        ...     _ = lake.append("raw/t", pl.DataFrame({"x": [x]}))
        >>> done = lake.optimize("raw/t", retention_hours=0)
        >>> done.files_removed, done.files_added, done.files_vacuumed, lake.rows("raw/t")
        (3, 1, 3, 3)
        """
        from loopml.lake._maintain import optimize

        dt = self._open(self.path(table), None)
        return optimize(dt, table, retention_hours=retention_hours, metadata=metadata)

    def sql(self, query: str, *, versions: dict[str, int] | None = None) -> pl.DataFrame:
        """Run a DuckDB ``query`` over the lake; each table is a view named ``zone_name``
        (``clean/flights`` is ``clean_flights``), at its latest version or ``versions[table]``.

        >>> import tempfile, polars as pl
        >>> lake = Lake(tempfile.mkdtemp())
        >>> _ = lake.append("clean/t", pl.DataFrame({"x": [1, 2, 3]}))
        >>> lake.sql("SELECT max(x) AS m, count(*) AS n FROM clean_t").row(0)
        (3, 3)
        """
        from loopml.lake._sql import sql

        return sql(self, query, versions=versions)

    def table(self, name: str) -> str:
        """The ``zone/name`` of an existing table named as ``zone/name`` or by its SQL view
        name ``zone_name``; an unknown name is a ``LakeError`` listing the tables."""
        from loopml.lake._sql import view_name

        tables = self.tables()
        if name in tables:
            return name
        by_view = {view_name(t): t for t in tables}
        if name in by_view:
            return by_view[name]
        raise self._missing(name)

    def _latest(self, path: str) -> Any:
        """A context holding the table at ``path`` at its latest version, or None (see
        ``Handles``): for the table's metadata and writes, never handed out."""
        return self._handles.latest(path, lambda: self._open(path, None, missing_ok=True))

    def _open(self, path: str, version: int | None, *, missing_ok: bool = False) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            return DeltaTable(path, version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            if missing_ok and version is None:
                return None
            raise self._missing(self._name_of(path)) from None
        except (DeltaError, OSError, ValueError) as exc:
            if version is not None:
                latest = self._open(path, None, missing_ok=True)
                name = self._name_of(path)
                if latest is not None and (version < 0 or version > latest.version()):
                    raise LakeError(
                        f"Table {name} has no version {version}; "
                        f"versions run from 0 to {latest.version()}.",
                        hint=f"'loopml lake history {name}' lists them.",
                    ) from None
                raise LakeError(f"Cannot open {name} at version {version}: {first_line(exc)}",
                                hint="Versions older than the log's retention may be gone; "
                                f"'loopml lake history {name}' lists those kept.") from exc
            raise LakeError(f"Cannot open {path}: {first_line(exc)}") from exc

    def _name_of(self, path: str) -> str:
        """``zone/name`` of a table path under this lake (the path itself if elsewhere)."""
        if self._local:
            try:
                return Path(path).relative_to(Path(self.uri).resolve()).as_posix()
            except ValueError:
                return path
        root = self.uri.rstrip("/") + "/"
        return path[len(root):] if path.startswith(root) else path

    def _missing(self, table: str) -> LakeError:
        try:
            existing = self.tables()
        except LakeError:
            existing = []
        return LakeError(
            unknown_name("table", table, existing) if existing else f"No table {table} yet.",
            hint="Tables appear when data is first ingested ('loopml run'); "
            "'loopml lake ls' lists them.",
        )
