"""SQL over the lake with DuckDB: each table is a view named ``zone_name``.

A local table's view reads the Parquet files that Delta lists for its version
(``read_parquet([...])``); deltalake's own pyarrow dataset is never handed to DuckDB, because
that pairing crashes at interpreter exit now and then. DuckDB cannot reach object stores
without an extension it would download, so a table on ``s3://`` that the query names is read
through Delta into memory first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeError, first_line
from loopml.lake._types import empty_batch

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake._lake import Lake


def view_name(table: str) -> str:
    """``clean/flights`` -> ``clean_flights`` (``-`` and ``/`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", table)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql(lake: Lake, query: str, *, versions: dict[str, int] | None = None) -> pl.DataFrame:
    """Run ``query`` over every table of ``lake`` (latest versions, or ``versions[table]``)."""
    import duckdb
    import polars as pl

    if not query.strip():
        raise LakeError("The SQL query is empty.", hint='loopml lake sql "SELECT ..."')
    tables = lake.tables()
    versions = dict(versions or {})
    unknown = sorted(set(versions) - set(tables))
    if unknown:
        raise lake._missing(unknown[0])
    con = duckdb.connect()
    try:
        lowered = query.lower()
        for table in tables:
            name = view_name(table)
            if not lake._local and name.lower() not in lowered:
                continue  # a remote table is read into memory only when the query names it
            _register(con, lake, table, name, versions.get(table))
        try:
            rel = con.sql(query)
            if rel is None:
                raise LakeError("The SQL statement returned no rows to show.",
                                hint="Use a SELECT (the lake is read-only here).")
            out = rel.arrow()
            arrow = out.read_all() if hasattr(out, "read_all") else out  # DuckDB 2 gives a reader
        except duckdb.Error as exc:
            views = ", ".join(view_name(t) for t in tables) or "(none yet)"
            raise LakeError(
                f"DuckDB could not run the query: {first_line(exc)}",
                hint=f"Tables are views named zone_name: {views}.",
            ) from exc
    finally:
        con.close()
    frame = pl.from_arrow(arrow)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _register(con: Any, lake: Lake, table: str, name: str, version: int | None) -> None:
    import pyarrow as pa

    dt = lake._open(lake.path(table), version)
    schema = pa.schema(dt.schema().to_arrow())  # delta-rs gives arro3; pyarrow reads it
    if not lake._local:
        data = lake.read(table, version=dt.version())
        con.register(f"__{name}", data.to_arrow())
        con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM {_ident('__' + name)}")
        return
    files = dt.file_uris()
    empty = empty_batch(schema)
    con.register(f"__{name}_empty", empty)
    if not files:
        con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM {_ident(f'__{name}_empty')}")
        return
    partitions = dt.metadata().partition_columns
    listing = "[" + ", ".join(_quote(f) for f in files) + "]"
    hive = ", hive_partitioning = true, hive_types_autocast = false" if partitions else ""
    source = f"read_parquet({listing}, union_by_name = true{hive})"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    types = dict(con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE {_ident(f'__{name}_empty')})"
    ).fetchall())
    # every column of the Delta schema, in its order and type: a column that no file of this
    # version has yet reads as null; partition values (kept in the paths) are cast back
    columns = []
    for col in schema.names:
        value = _ident(col) if col in present else "NULL"
        if col in partitions:
            value = f"NULLIF({value}, '__HIVE_DEFAULT_PARTITION__')"
        columns.append(f"CAST({value} AS {types[col]}) AS {_ident(col)}")
    con.execute(f"CREATE VIEW {_ident(name)} AS SELECT {', '.join(columns)} FROM {source}")
