"""``loopml lake ...``: list, inspect, query and maintain the project's Delta tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from loopml.cli._app import JsonOpt, ProjectOpt, _project, friendly

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import OptimizeResult

lake_app = typer.Typer(
    name="lake",
    help="The project's Delta tables: list them, read their history, show rows as of a "
    "version or time, query them with SQL, and compact and vacuum them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

TableArg = Annotated[str, typer.Argument(
    help="A table as ZONE/NAME (e.g. clean/flights) or its SQL name (clean_flights).")]


@lake_app.command("ls")
@friendly
def ls(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """List the lake's tables with their version and row count."""
    from loopml.lake import view_name

    lake = _project(project).lake
    found = []
    for table in lake.tables():
        found.append({"table": table, "sql_name": view_name(table),
                      "version": lake.version(table), "rows": lake.rows(table),
                      "partition_by": lake.partition_columns(table)})
    if as_json:
        _json(found)
        return
    if not found:
        _console().print(f"No tables yet in {lake.uri} (they appear with 'loopml run').")
        return
    _table(f"Tables in {lake.uri}", ["table", "sql name", "version", "rows", "partitioned by"],
           [[t["table"], t["sql_name"], t["version"], t["rows"], ", ".join(t["partition_by"])]
            for t in found])


@lake_app.command()
@friendly
def history(
    table: TableArg,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", min=1, help="How many commits, newest first (default: all).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """List a table's commits, newest first: version, time, operation and counts."""
    lake = _project(project).lake
    name = lake.table(table)
    commits = [_commit(c) for c in lake.history(name, limit=limit)]
    if as_json:
        _json(commits)
        return
    _table(f"History of {name} (newest first)", ["version", "time (UTC)", "operation", "what"],
           [[c["version"], c["time"][:19].replace("T", " ") if c["time"] else "", c["operation"],
             _what(c)] for c in commits])


@lake_app.command()
@friendly
def show(
    table: TableArg,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="A version number, or a time such as 2026-01-31T12:00:00 (UTC unless "
        "it has an offset): the table as it was then.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="How many rows to show.")] = 20,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Show a table's rows, now or as of an earlier version or time."""
    lake = _project(project).lake
    name = lake.table(table)
    if as_of is None:
        version = lake.version(name)
    elif as_of.strip().isdigit():
        version = int(as_of)
    else:
        version = lake.version_at(name, as_of)
    frame = lake.read(name, version=version)
    shown = frame.head(limit)
    if as_json:
        _json({"table": name, "version": version, "rows": frame.height,
               "columns": shown.columns, "data": _rows(shown)})
        return
    _frame(shown, f"{name} v{version}: {frame.height} row(s)"
           + (f", first {shown.height} shown" if shown.height < frame.height else ""))


@lake_app.command()
@friendly
def sql(
    query: Annotated[str, typer.Argument(
        help="A DuckDB query; each table is a view named ZONE_NAME, e.g. "
        "\"SELECT origin, count(*) FROM clean_flights GROUP BY 1\".")],
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=0, help="How many rows to print (all with --json).")] = 100,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Query the lake with SQL (DuckDB), read-only, at each table's latest version."""
    lake = _project(project).lake
    frame = lake.sql(query)
    if as_json:
        _json({"columns": frame.columns, "rows": _rows(frame)})
        return
    shown = frame.head(limit)
    _frame(shown, f"{frame.height} row(s)"
           + (f", first {shown.height} shown" if shown.height < frame.height else ""))


@lake_app.command()
@friendly
def optimize(
    table: Annotated[Optional[str], typer.Argument(
        help="One table (default: every table).", show_default=False)] = None,
    retention_hours: Annotated[Optional[int], typer.Option(
        "--retention-hours", min=0, help="Keep the files that versions younger than this need "
        "(default: storage.retention_hours, 168).", show_default=False)] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Compact small files and vacuum old ones under the retention policy.

    Compaction writes a new version with the same rows in fewer files; vacuum then
    deletes files that no version younger than the retention needs (time travel to
    older versions may stop working). Each table's counts are an event in the catalog.
    """
    from dataclasses import asdict

    proj = _project(project)
    with proj:
        name = None if table is None else proj.lake.table(table)
        done = proj.optimize_lake(name, retention_hours=retention_hours)
    if as_json:
        _json([asdict(r) for r in done])
        return
    _show_optimized(done)


# ---- rendering ----------------------------------------------------------------------------


def _console() -> Any:
    from loopml.cli._render import console

    return console()


def _json(data: Any) -> None:
    from loopml.cli._render import print_json

    print_json(data)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for col in columns:
        out.add_column(col, overflow="fold")
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    _console().print(out)


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-able dicts (DuckDB's HUGEINT sums arrive as Decimal)."""
    from decimal import Decimal

    def plain(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        return v

    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dicts()]


def _frame(frame: pl.DataFrame, title: str) -> None:
    """Rows as a table, or one small table per row when the columns would not fit."""
    cells = [["null" if v is None else v for v in row] for row in frame.rows()]
    if len(frame.columns) * 12 <= _console().width:
        _table(title, frame.columns, cells)
        return
    _console().print(title)
    for i, row in enumerate(cells):
        _table(f"row {i + 1}", ["column", "value"], [[c, v] for c, v in zip(frame.columns, row)])


def _commit(c: dict[str, Any]) -> dict[str, Any]:
    stamp = c.get("timestamp")
    when = None if stamp is None else datetime.fromtimestamp(stamp / 1000, tz=UTC)
    plain = ("timestamp", "operation", "operationParameters", "operationMetrics", "version",
             "engineInfo", "clientVersion", "readVersion", "isBlindAppend")
    return {
        "version": c.get("version"),
        "time": None if when is None else when.isoformat(),
        "operation": c.get("operation", ""),
        "parameters": c.get("operationParameters") or {},
        "metrics": c.get("operationMetrics") or {},
        "metadata": {k: v for k, v in c.items() if k not in plain},
    }


def _what(c: dict[str, Any]) -> str:
    m = c["metrics"]
    keys = ("num_added_rows", "numTargetRowsInserted", "numTargetRowsUpdated", "numFilesAdded",
            "numFilesRemoved", "num_added_files", "num_removed_files", "numDeletedFiles")
    parts = [f"{k}={m[k]}" for k in keys if k in m]
    parts += [f"{k}={v}" for k, v in c["metadata"].items() if k.startswith("loopml.")][:3]
    return ", ".join(parts)


def _show_optimized(done: list[OptimizeResult]) -> None:
    if not done:
        _console().print("No tables to optimize yet.")
        return
    _table("Optimized (compacted, then vacuumed)",
           ["table", "version", "files compacted", "into", "MB saved by vacuum", "files vacuumed"],
           [[r.table, f"{r.version_before} -> {r.version}", r.files_removed, r.files_added,
             f"{r.bytes_vacuumed / 1e6:.2f}", r.files_vacuumed] for r in done])
    hours = done[0].retention_hours
    kept = "only the files of each table's latest version" if hours == 0 else (
        f"the files that versions younger than {hours} h need")
    _console().print(f"Retention {hours} h: kept {kept}.")
