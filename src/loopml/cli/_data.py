"""``loopml ingest``, ``loopml sources``, ``loopml validate``, ``loopml profile``,
``loopml quarantine ls|show|replay`` and ``loopml contract check``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from loopml.cli._app import ClusterOpt, JsonOpt, ProjectOpt, _project, friendly

quarantine_app = typer.Typer(
    name="quarantine",
    help="Rows that failed validation: list them, show them, replay them after a fix.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

contract_app = typer.Typer(
    name="contract",
    help="Data contracts (contracts/SOURCE.yaml): check them for mistakes.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SourceArg = Annotated[str, typer.Argument(help="Source name (as in loopml.yaml).")]
OptionalSource = Annotated[
    Optional[str],
    typer.Argument(help="Only this source (default: every source).", show_default=False),
]
FollowOpt = Annotated[
    bool,
    typer.Option("--follow", help="Keep reading a stream (mqtt) until Ctrl-C or SIGTERM; the "
                 "last chunk is committed before exit."),
]
ReasonOpt = Annotated[
    Optional[str],
    typer.Option("--reason", "-r", help="Only rows whose reasons contain this text.",
                 show_default=False),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many rows.")]


@friendly
def ingest(
    source: OptionalSource = None,
    as_json: JsonOpt = False,
    follow: FollowOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Ingest new data without training.

    Reads each source from where its last ingest ended, validates the rows (bad ones
    to quarantine with reasons) and commits each chunk crash-safely; an ingest a crash
    left half-done is finished or undone first. Prints per source: rows in, accepted,
    quarantined and duplicates, and for a source that cleans, a line per cleaning step.
    """
    import threading

    from loopml.cli._render import RichReporter, console, print_json
    from loopml.core.progress import SILENT

    proj = _project(project)
    stop = threading.Event()
    reporter_cm: Any = contextlib.nullcontext(SILENT) if as_json else RichReporter()
    with proj, _stopping(stop, follow), reporter_cm as reporter:
        if follow and not as_json:
            console().print("Following; Ctrl-C or SIGTERM stops after committing the last chunk.")
        results = proj.ingest(source, follow=follow, stop=stop, reporter=reporter)
        names = [source] if source else [s.name for s in proj.config.sources]
    rows = {r["source"]: r for r in summarize(results)}
    summary = [rows.get(n) or {"source": n, "chunks": 0, "rows_in": 0, "accepted": 0,
                               "quarantined": 0, "duplicates": 0, "replaced": 0,
                               "rejected": 0, "recovered": 0, "warned": 0,
                               "quality_score": 100.0} for n in names]
    if as_json:
        print_json({"sources": summary})
        return
    _table("Ingest", ["source", "rows in", "accepted", "quarantined", "duplicates", "replaced",
                      "quality"],
           [[s["source"], f"{s['rows_in']:,}", f"{s['accepted']:,}", f"{s['quarantined']:,}",
             f"{s['duplicates']:,}", f"{s['replaced']:,}",
             f"{s['quality_score']:g}" if s["rows_in"] else "-"] for s in summary])
    for s in summary:
        for step, n in s.get("cleaning", {}).items():
            columns = ", ".join(f"{c} {k:,}" for c, k in s["cleaning_columns"][step].items())
            console().print(f"{s['source']} cleaning, {step}: {n:,} changed ({columns})")
    recovered = sum(s["recovered"] for s in summary)
    if recovered:
        console().print(f"Finished {recovered} ingest(s) a crash had left half-done.")


@contextlib.contextmanager
def _stopping(stop: Any, follow: bool) -> Iterator[None]:
    """While following, SIGINT and SIGTERM set ``stop`` instead of killing the process."""
    import signal

    if not follow:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@friendly
def sources(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """List the sources with their cursor and last ingest.

    The cursor says where the next ingest starts (files already read, a watermark,
    a stream offset).
    """
    from loopml.cli._render import print_json

    proj = _project(project)
    with proj:
        found = proj.sources()
    if as_json:
        print_json(found)
        return
    rows = []
    for s in found:
        last = s["last_ingest"]
        when = "-" if last is None else _when(last["started_at"])
        counts = "-" if last is None else (
            f"{last['rows_in']:,} in, {last['rows_accepted']:,} accepted, "
            f"{last['rows_quarantined']:,} quarantined")
        pending = f" ({s['pending']} pending)" if s["pending"] else ""
        totals = s["totals"]
        quality = "-" if not totals["rows_in"] else (
            f"{totals['quality_score']:g} ({last['quality_score']:g} last)")
        rows.append([s["name"], s["kind"], s["cursor_summary"] + pending, counts, when,
                     quality])
    _table("Sources", ["source", "kind", "cursor", "last ingest", "at", "quality"], rows)


@quarantine_app.command("ls")
@friendly
def quarantine_ls(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Quarantined rows per source, counted by reason."""
    from loopml.cli._render import console, print_json

    proj = _project(project)
    with proj:
        found = proj.quarantine()
    if as_json:
        print_json(found)
        return
    if not any(s["rows"] for s in found):
        console().print("Nothing in quarantine.")
        return
    rows = []
    for s in found:
        reasons = list(s["by_reason"].items())
        first = f"{reasons[0][1]:,}  {reasons[0][0]}" if reasons else "-"
        rows.append([s["source"], f"{s['rows']:,}", first])
        rows.extend(["", "", f"{n:,}  {r}"] for r, n in reasons[1:10])
    _table("Quarantine", ["source", "rows", "by reason"], rows)


@quarantine_app.command("show")
@friendly
def quarantine_show(
    source: SourceArg,
    reason: ReasonOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Show quarantined rows of a source with their reasons."""
    from loopml.cli._render import console, print_json

    proj = _project(project)
    with proj:
        frame = proj.quarantined(source, reason=reason, limit=limit)
    if as_json:
        print_json(frame.to_dicts())
        return
    if frame.height == 0:
        match = f" matching {reason!r}" if reason else ""
        console().print(f"No quarantined rows of {source}{match}.")
        return
    hidden = {"_ingest_id", "_ingested_at"}
    cols = [c for c in frame.columns if c not in hidden]
    _table(f"Quarantine of {source}", cols,
           [["" if v is None else str(v) for v in row] for row in frame.select(cols).rows()])


@quarantine_app.command("replay")
@friendly
def quarantine_replay(source: SourceArg, as_json: JsonOpt = False,
                      project: ProjectOpt = None) -> None:
    """Re-validate a source's quarantined rows against the current contract.

    Rows that now pass move to the clean table; the rest stay with their (new)
    reasons. Fix contracts/SOURCE.yaml first.
    """
    from loopml.cli._render import console, print_json

    proj = _project(project)
    with proj:
        counts = proj.replay(source)
    if as_json:
        print_json(counts)
        return
    console().print(f"Replayed {counts['rows_in']:,} row(s) of {source}: "
                    f"[bold]{counts['moved']:,}[/] moved to clean, "
                    f"{counts['still_quarantined']:,} still quarantined.")


def summarize(results: list[Any]) -> list[dict[str, Any]]:
    """Per source: chunks, rows in, accepted, quarantined, duplicates, replaced, rejected,
    warned (accepted rows that broke only warn rules) and the data-quality score; for a
    source that cleans, ``cleaning`` (values or rows changed per step) and
    ``cleaning_columns`` (per step, per column)."""
    from loopml.core.records import CleaningLog, quality_score

    logs: dict[str, CleaningLog] = {}
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        row = out.setdefault(r.source, {
            "source": r.source, "chunks": 0, "rows_in": 0, "accepted": 0, "quarantined": 0,
            "duplicates": 0, "replaced": 0, "rejected": 0, "recovered": 0, "warned": 0,
            "clean_version": None, "quarantine_version": None,
        })
        row["chunks"] += 1
        row["rows_in"] += r.report.rows_in
        row["accepted"] += r.report.rows_accepted
        row["quarantined"] += r.report.rows_quarantined
        row["duplicates"] += r.report.duplicates
        row["replaced"] += r.replaced
        row["rejected"] += r.rejected
        row["recovered"] += int(r.recovered)
        row["warned"] += r.report.warned_rows
        if r.report.cleaning is not None:
            logs[r.source] = logs.get(r.source, CleaningLog()).plus(r.report.cleaning)
        row["clean_version"] = r.clean.version
        if r.quarantine is not None:
            row["quarantine_version"] = r.quarantine.version
    for row in out.values():
        row["quality_score"] = quality_score(row["rows_in"], row["quarantined"], row["warned"])
        if row["source"] in logs:
            log = logs[row["source"]]
            row["cleaning"] = log.by_step()
            columns: dict[str, dict[str, int]] = {}
            for c in log.changes:
                at = columns.setdefault(c.step, {})
                at[c.column] = at.get(c.column, 0) + c.rows
            row["cleaning_columns"] = columns
    return list(out.values())


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    from loopml.cli._render import console

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if hasattr(at, "strftime") else str(at)


@contract_app.command("check")
@friendly
def contract_check(
    target: Annotated[
        Optional[str],
        typer.Argument(help="A source name or a contract file (default: every source's).",
                       show_default=False),
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Check contract files and explain each mistake.

    Reports every problem, not only the first: YAML syntax (with the line), unknown
    keys and types, bounds, regular expressions, rules whose SQL does not parse or
    reads unknown columns, settings without effect. Exits 1 when any is found.
    """
    from pathlib import Path

    from loopml.cli._render import console, print_json
    from loopml.quality import check_contract

    if target is not None and (target.endswith((".yaml", ".yml")) or "/" in target):
        paths = [Path(target)]
    else:
        proj = _project(project)
        with proj:
            names = [target] if target else [s.name for s in proj.config.sources]
            paths = [proj.root / "contracts" / f"{proj.config.source(n).name}.yaml"
                     for n in names]
    found = {_shown_path(p): check_contract(p) for p in paths}
    if as_json:
        print_json([{"contract": p, "problems": found[p]} for p in found])
    else:
        c = console()
        for path, problems in found.items():
            if not problems:
                c.print(f"[green]{path}: no problems[/]")
                continue
            c.print(f"[red]{path}: {len(problems)} problem(s)[/]")
            for problem in problems:
                c.print(f"  - {problem}", markup=False, highlight=False)
    if any(found.values()):
        raise typer.Exit(1)


def _shown_path(path: Any) -> str:
    """``path`` relative to the working folder when it is inside it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@friendly
def validate(
    source: Annotated[Optional[str], typer.Argument(help="Source name (default: the problem's).", show_default=False)] = None,
    version: Annotated[Optional[int], typer.Option("--version", min=0, help="The clean table's version (default: the latest).", show_default=False)] = None,
    cluster: ClusterOpt = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Validate a source's clean table again against its current contract.

    One Parquet file at a time, on the Dask cluster when one is set (--cluster or
    compute.cluster), with the same counts and reasons as in one process. Checks the
    rules about each row; the rules about a batch (null rates, uniqueness, the key,
    duplicates) were checked per chunk at ingest. Writes nothing but an HTML report
    and a catalog event. Exits 1 when a row breaks an error rule.
    """
    from loopml.cli._render import console, print_json

    proj = _project(project)
    with proj, console().status("Validating ..."):
        done = proj.validate(source, version=version, cluster=cluster)
    r = done.report
    if as_json:
        print_json({"table": str(done.table), "parts": done.parts, "cluster": done.cluster,
                    "rows_in": r.rows_in, "accepted": r.rows_accepted,
                    "quarantined": r.rows_quarantined, "warned": r.warned_rows,
                    "violations": [{"column": v.column, "rule": v.rule, "rows": v.rows,
                                    "severity": v.severity, "example": v.example}
                                   for v in r.violations],
                    "report": done.path})
    else:
        console().print(f"{done.table} in {done.parts} part(s) on {done.cluster}: "
                        f"{r.rows_in:,} rows, {r.rows_accepted:,} pass, "
                        f"{r.rows_quarantined:,} break an error rule, {r.warned_rows:,} warned")
        broken = [[v.column, v.rule, v.severity, f"{v.rows:,}", v.example or ""]
                  for v in r.violations if v.rows]
        if broken:
            _table("Rules broken", ["column", "rule", "severity", "rows", "example"], broken)
        console().print(f"Wrote [bold]{done.path}[/]")
    if r.rows_quarantined:
        raise typer.Exit(1)


@friendly
def profile(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write the "
                      "report (default: .loopml/reports/profile/SOURCE.html).",
                      show_default=False)] = None,
    cluster: ClusterOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Profile the clean table: the EDA report, without training.

    Statistics, missingness patterns, correlations, the target against each feature,
    trends over the time column, anomalous rows, duplicates and the quarantine by reason,
    in one HTML file that says which sections used a sample. The column statistics are
    computed file by file over every row, on the Dask cluster when one is set (--cluster or
    compute.cluster).
    """
    from loopml.cli._render import RichReporter, console

    proj = _project(project)
    with proj, RichReporter() as reporter:
        path = proj.profile(output=output, reporter=reporter, cluster=cluster)
    console().print(f"Wrote [bold]{path}[/]")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``loopml`` app."""
    app.command()(ingest)
    app.command()(sources)
    app.command()(validate)
    app.command()(profile)
    app.add_typer(quarantine_app)
    app.add_typer(contract_app)
