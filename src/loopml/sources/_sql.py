"""SQL sources: a table or a query of PostgreSQL, MariaDB/MySQL or SQLite, read in chunks.

The URL may hold ``${VAR}`` references (credentials), expanded from the environment when the
connection is made; everything shown (provenance, errors, logs) uses the URL without password
or query string. Reads stream (a server-side cursor where the driver has one) and build one
``Chunk`` of ``chunk_rows`` rows at a time, with Polars types taken from the database's own
column types: integers, floats, decimals (``Decimal(p, s)``, or float when the precision is
unbounded or above 38), booleans, dates, timestamps (with a time zone: UTC), text. Times of day
become ``HH:MM:SS`` text, intervals seconds, JSON and arrays JSON text (the lake stores none of
these natively).

Incremental reads use a watermark column. The cursor holds the last watermark value taken and
the hashes of the rows taken at exactly that value, so the next read asks for ``wm >= last``
and drops only those rows: rows that tie with the last value, including rows that arrive later
with it, are neither lost nor doubled. Rows whose watermark is NULL come first on the first
read (they cannot be compared later). Without a watermark the whole table is read again when
its content changed (a digest of its rows is kept in the cursor).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopml.core.errors import SourceError, first_line, unknown_name
from loopml.core.records import Chunk
from loopml.sources._sql_values import (
    decode,
    decode_key,
    encode,
    kind_of_type,
    kind_of_values,
    row_hashes,
    series,
    stored,
)

if TYPE_CHECKING:
    import polars as pl
    import sqlalchemy as sa

    from loopml.core.config import SqlSource

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_WM = "_loopml_wm"  # the watermark's raw value, selected beside the row


def display_url(url: str) -> str:
    """The URL as it may be shown: no password, no query string (``${VAR}`` stays as written).

    >>> display_url("postgresql://me:s3cret@db:5432/shop?sslpassword=x")
    'postgresql://me:***@db:5432/shop'
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        head = url.split("://", 1)[0]
        return f"{head}://(unparsable URL)"
    return parsed.set(query={}).render_as_string(hide_password=True)


def sql_chunks(
    config: SqlSource, *, cursor: dict[str, Any] | None, base_dir: str | Path = "."
) -> Iterator[Chunk]:
    """The rows of a SQL source after ``cursor``, one ``Chunk`` per ``chunk_rows`` rows.

    With a watermark the cursor is ``{"watermark": last value as text | None, "type": its
    type, "rows": n, "ties": {row hash: count}}`` (the rows taken at exactly that value);
    without one ``{"rows": n, "digest": d}``. Chunks yielded
    before a failure stay valid: the failure is a ``SourceError`` once they are consumed.
    """
    reader = _Reader(config, base_dir=Path(base_dir))
    if config.watermark is None:
        yield from reader.snapshot(cursor)
    else:
        yield from reader.incremental(cursor)


def sql_sample(config: SqlSource, *, rows: int, base_dir: str | Path = ".") -> pl.DataFrame:
    """At most ``rows`` rows of the source (the first the database returns), as chunks would
    hold them: to infer a contract without reading a whole table."""
    import polars as pl

    reader = _Reader(config, base_dir=Path(base_dir))
    frames = [frame for frame, _ in reader.read(cursor=None, limit=rows)]
    if not frames:
        return reader.empty_frame()
    return pl.concat(frames, how="vertical_relaxed")


class _Reader:
    """One source's connection details and the statements that read it."""

    def __init__(self, config: SqlSource, *, base_dir: Path):
        self.config = config
        self.shown = display_url(config.url)
        self.secrets: list[str] = []
        self.url = self._expand(config.url, base_dir)
        self.where = f"{self.shown}#{config.table}" if config.table else f"{self.shown}#query"
        self.kinds: dict[str, tuple[Any, ...]] = {}  # column -> how its values are built
        self.columns: list[str] = []

    # ---- the two modes -----------------------------------------------------------------

    def incremental(self, cursor: dict[str, Any] | None) -> Iterator[Chunk]:
        start = stored(cursor)
        skip: Counter[str] = Counter(cursor.get("ties", {}) if cursor else {})
        rows_before = int(cursor.get("rows", 0)) if cursor else 0
        last: tuple[str, str] | None = decode_key(start) if cursor is not None else None
        started = cursor is not None
        taken: Counter[str] = Counter(skip)
        count = rows_before
        for frame, raw in self.read(cursor=cursor, limit=None):
            keep: list[bool] = []
            run: list[int] = []  # rows kept at the value ``last`` (only they are hashed)
            for i, w in enumerate(raw):
                key = encode(w)
                k = (key["type"], key["value"]) if key is not None else None
                if started and k == last:
                    if skip.total() > 0:
                        h = row_hashes(frame[i], self.columns)[0]
                        if skip[h] > 0:
                            skip[h] -= 1
                            keep.append(False)
                            continue
                    run.append(i)
                else:
                    last, started = k, True
                    taken, skip, run = Counter(), Counter(), [i]
                keep.append(True)
            if run:
                taken.update(row_hashes(frame[run], self.columns))
            if not any(keep):
                continue
            import polars as pl

            frame = frame.filter(pl.Series(keep))
            frame = self._provenance(frame, count)
            count += frame.height
            yield Chunk(source=self.config.name, frame=frame, cursor={
                "watermark": None if last is None else last[1],
                "type": None if last is None else last[0],
                "rows": count, "ties": dict(taken)})

    def snapshot(self, cursor: dict[str, Any] | None) -> Iterator[Chunk]:
        if cursor is not None and cursor.get("digest"):
            rows, digest = self._digest()
            if rows == cursor.get("rows") and digest == cursor["digest"]:
                return
        total = 0
        acc = 0
        pending: pl.DataFrame | None = None
        for frame, _ in self.read(cursor=None, limit=None):
            acc = (acc + sum(int(h, 16) for h in row_hashes(frame, self.columns))) % 2**128
            if pending is not None:
                yield Chunk(source=self.config.name, frame=pending,
                            cursor={"rows": total, "digest": None})
            pending = self._provenance(frame, total)
            total += frame.height
        if pending is not None:
            yield Chunk(source=self.config.name, frame=pending,
                        cursor={"rows": total, "digest": f"{acc:032x}"})

    def _digest(self) -> tuple[int, str]:
        acc = rows = 0
        for frame, _ in self.read(cursor=None, limit=None):
            acc = (acc + sum(int(h, 16) for h in row_hashes(frame, self.columns))) % 2**128
            rows += frame.height
        return rows, f"{acc:032x}"

    # ---- reading -----------------------------------------------------------------------

    def read(
        self, *, cursor: dict[str, Any] | None, limit: int | None
    ) -> Iterator[tuple[pl.DataFrame, list[Any]]]:
        """Frames of at most ``chunk_rows`` rows (without provenance) and, beside them, each
        row's raw watermark value (empty without a watermark)."""
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine()
        read = 0
        try:
            try:
                conn = engine.connect()
            except SQLAlchemyError as exc:
                raise self._connect_error(exc) from exc
            result = None
            finished = False
            try:
                stmt, params = self._statement(conn, cursor, limit)
                try:
                    result = conn.execution_options(
                        stream_results=True, yield_per=self.config.chunk_rows
                    ).execute(stmt, params)
                    self.columns = [c for c in result.keys() if c != _WM]
                except SQLAlchemyError as exc:
                    raise self._query_error(exc) from exc
                if self.config.watermark and self.config.watermark not in self.columns:
                    raise SourceError(
                        unknown_name("watermark column", self.config.watermark, self.columns)
                        + f" (in {self.where})",
                        hint="Set sources.<name>.watermark to a column the query returns.",
                    )
                description = result.cursor.description if result.cursor else None
                while True:
                    try:
                        rows = result.fetchmany(self.config.chunk_rows)
                    except SQLAlchemyError as exc:
                        raise self._lost_error(exc, read) from exc
                    if not rows:
                        finished = True
                        break
                    read += len(rows)
                    yield self._frame(rows, description)
            finally:
                with contextlib.suppress(Exception):  # a dead connection fails to close
                    if finished:
                        conn.close()
                    else:  # abandoned or broken: drop it rather than drain the rest
                        _quiet(result)
                        conn.invalidate()
                        conn.close()
        finally:
            engine.dispose()

    def _statement(
        self, conn: sa.Connection, cursor: dict[str, Any] | None, limit: int | None
    ) -> tuple[Any, dict[str, Any]]:
        import sqlalchemy as sa

        wm = self.config.watermark
        found = stored(cursor)
        last = None if found is None else decode(found)
        after = last is not None
        if self.config.table is not None:
            table = self._table(conn)
            if wm is not None and wm not in table.c:
                raise SourceError(
                    f"{unknown_name('watermark column', wm, table.c.keys())} "
                    f"(table {self.config.table!r} in {self.shown})",
                    hint="Set sources.<name>.watermark to a column of the table.",
                )
            for col in table.c:
                self.kinds[col.name] = kind_of_type(col.type)
            stmt = sa.select(table)
            if wm is not None:
                col = table.c[wm]
                stmt = stmt.add_columns(sa.type_coerce(col, sa.types.NullType()).label(_WM))
                if after:
                    raw = sa.type_coerce(col, sa.types.NullType())  # compare as stored
                    stmt = stmt.where(raw >= sa.bindparam("last", last, type_=sa.types.NullType()))
                    stmt = stmt.order_by(col)
                else:
                    stmt = stmt.order_by(sa.case((col.is_(None), 0), else_=1), col)
            if limit is not None:
                stmt = stmt.limit(limit)
            return stmt, {}
        query = self.config.query.strip().rstrip(";")  # type: ignore[union-attr]
        if wm is None and limit is None:
            return sa.text(query), {}
        prep = conn.dialect.identifier_preparer
        sql = f"SELECT * FROM ({query}) AS _loopml_q"
        params: dict[str, Any] = {}
        if wm is not None:
            q = prep.quote(wm)
            sql = f"SELECT _loopml_q.*, _loopml_q.{q} AS {_WM} FROM ({query}) AS _loopml_q"
            if after:
                sql += f" WHERE _loopml_q.{q} >= :last ORDER BY _loopml_q.{q}"
                params["last"] = last
            else:
                sql += (f" ORDER BY CASE WHEN _loopml_q.{q} IS NULL THEN 0 ELSE 1 END, "
                        f"_loopml_q.{q}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sa.text(sql), params

    def _table(self, conn: sa.Connection) -> sa.Table:
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        name = self.config.table or ""
        schema, _, table = name.rpartition(".") if "." in name else (None, "", name)
        try:
            if not sa.inspect(conn).has_table(table, schema=schema or None):
                names = sa.inspect(conn).get_table_names(schema=schema or None)
                raise SourceError(
                    f"{unknown_name('table', name, names)} (in {self.shown})",
                    hint="Check sources.<name>.table in loopml.yaml, or the database in the URL.",
                )
            return sa.Table(table, sa.MetaData(), schema=schema or None, autoload_with=conn)
        except SQLAlchemyError as exc:
            raise self._query_error(exc) from exc

    def _frame(self, rows: list[Any], description: Any) -> tuple[pl.DataFrame, list[Any]]:
        import polars as pl

        width = len(self.columns)
        columns = list(zip(*rows, strict=True)) if rows else [()] * (width + 1)
        raw = list(columns[width]) if self.config.watermark else []
        built = []
        for i, name in enumerate(self.columns):
            values = list(columns[i])
            kind = self.kinds.get(name)
            if kind is None or kind[0] == "infer":
                kind = self.kinds[name] = kind_of_values(values, description, i)
            built.append(series(name, values, kind))
        return pl.DataFrame(built), raw

    def empty_frame(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame({c: pl.Series(c, [], dtype=pl.String) for c in self.columns})

    def _provenance(self, frame: pl.DataFrame, before: int) -> pl.DataFrame:
        import polars as pl

        return frame.with_columns(
            pl.lit(self.where).alias("_source_file"),
            pl.int_range(before + 1, before + frame.height + 1, dtype=pl.Int64)
            .alias("_source_row"),
        )

    # ---- connecting --------------------------------------------------------------------

    def _expand(self, url: str, base_dir: Path) -> Any:
        from sqlalchemy import make_url
        from sqlalchemy.exc import ArgumentError

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise SourceError(
                    f"The URL of source {self.config.name!r} ({self.shown}) names the "
                    f"environment variable {name}, which is not set.",
                    hint=f"export {name}=... before running loopml.",
                )
            found = os.environ[name]
            if found:
                self.secrets.append(found)
            return quote(found, safe="")

        try:
            parsed = make_url(_VAR.sub(value, url))
        except (ArgumentError, ValueError) as exc:
            raise SourceError(
                f"Source {self.config.name!r} has a URL that is not a database URL: "
                f"{self.shown}.",
                hint="Write it as postgresql://USER@HOST:PORT/DB, mysql://..., mariadb://... "
                "or sqlite:///path/to/file.db.",
            ) from exc
        if parsed.password:
            self.secrets.append(str(parsed.password))
        driver = _DRIVERS.get(parsed.drivername)
        if driver is not None:
            parsed = parsed.set(drivername=driver)
        backend = parsed.get_backend_name()
        if backend not in ("postgresql", "mysql", "mariadb", "sqlite"):
            raise SourceError(
                f"Source {self.config.name!r}: {backend!r} databases are not supported "
                f"({self.shown}).",
                hint="Use a postgresql://, mysql://, mariadb:// or sqlite:/// URL.",
            )
        if backend == "sqlite":
            db = parsed.database or ""
            if db in ("", ":memory:") or db.startswith("file:"):
                return parsed
            path = Path(db) if Path(db).is_absolute() else base_dir / db
            if not path.is_file():
                raise SourceError(
                    f"The SQLite database {path} of source {self.config.name!r} does not exist.",
                    hint="Check the path in the URL: sqlite:///relative/to/project.db or "
                    "sqlite:////absolute/path.db.",
                )
            parsed = parsed.set(database=str(path))
        return parsed

    def _engine(self) -> sa.Engine:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        backend = self.url.get_backend_name()
        args: dict[str, Any] = {}
        if backend == "postgresql":
            args = {"connect_timeout": 10, "options": "-c timezone=UTC"}
        elif backend in ("mysql", "mariadb"):
            # timestamps come back in UTC; a slow consumer (the ingest commits between
            # chunks) does not make the server drop the streaming connection
            args = {"connect_timeout": 10,
                    "init_command": "SET time_zone = '+00:00', net_write_timeout = 3600"}
        try:
            return sa.create_engine(self.url, poolclass=NullPool, connect_args=args)
        except Exception as exc:  # a missing driver module, a bad option
            raise SourceError(
                f"Cannot open source {self.config.name!r} ({self.shown}): "
                f"{self._clean(first_line(exc))}",
                hint="Check the URL's scheme and options.",
            ) from exc

    # ---- errors ------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def _why(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None)
        return self._clean(first_line(orig if orig is not None else exc))

    def _connect_error(self, exc: BaseException) -> SourceError:
        why = self._why(exc)
        low = why.lower()
        if any(w in low for w in ("password", "authentication", "access denied", "role")):
            hint = ("Check the user name in the URL and the password: write it as ${VAR} in "
                    "the URL and export VAR in the environment.")
        elif "does not exist" in low or "unknown database" in low:
            hint = "Check the database name at the end of the URL."
        else:
            hint = ("Check that the database server is running and reachable at the URL's "
                    "host and port.")
        return SourceError(f"Cannot connect to {self.shown} (source {self.config.name!r}): "
                           f"{why}", hint=hint)

    def _query_error(self, exc: BaseException) -> SourceError:
        what = f"table {self.config.table!r}" if self.config.table else "the query"
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError) and _lost(self._why(exc)):
            return self._lost_error(exc, 0)
        return SourceError(
            f"Reading {what} of source {self.config.name!r} from {self.shown} failed: "
            f"{self._why(exc)}",
            hint="Check the table, column and query in loopml.yaml against the database "
            "(e.g. run the query in psql or mysql).",
        )

    def _lost_error(self, exc: BaseException, read: int) -> SourceError:
        return SourceError(
            f"The connection to {self.shown} broke while reading source {self.config.name!r} "
            f"after {read:,} rows: {self._why(exc)}",
            hint="The chunks read before the break are committed; run the ingest again to "
            "go on from there once the database is back.",
        )


def _quiet(result: Any) -> None:
    """Stop a dead streaming PyMySQL cursor from reading its socket again when it is
    collected (it would print a traceback of its own)."""
    found = getattr(getattr(result, "cursor", None), "_result", None)
    if found is not None and hasattr(found, "unbuffered_active"):
        found.unbuffered_active = False


def _lost(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in ("terminat", "closed", "lost connection", "gone away",
                                  "server closed", "connection"))
