"""What the CLI prints: errors, progress bars and summary tables (Rich)."""

from __future__ import annotations

import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from loopml.core.errors import LoopmlError
    from loopml.core.records import (
        Candidate,
        CheckReport,
        DriftReport,
        Leaderboard,
        LoopCycle,
        ModelVersion,
        RunResult,
    )
    from loopml.pipeline import Project

FRONTIER_POINTS = 4  # frontier points 'loopml run' prints
LEADERBOARD_ROWS = 8  # leaderboard rows 'loopml run' prints (the model report has them all)
_STEPS = {
    "ingest": "Ingesting and validating",
    "profile": "Profiling the clean table",
    "search": "Searching models",
    "validate": "Scoring the best candidates on validation",
    "refit": "Refitting the winner on train + validation",
    "evaluate": "Evaluating on the test split",
    "register": "Registering the model",
    "monitor": "Monitoring the prediction log",
}


@functools.cache
def console() -> Console:
    return Console(highlight=False)


def print_error(exc: LoopmlError) -> None:
    err = Console(stderr=True, highlight=False)
    err.print(f"[bold red]Error:[/] [bold]{exc.headline}[/]")
    err.print(exc.message, markup=False)
    if exc.hint:
        err.print(f"[yellow]Hint:[/] {exc.hint}")


class RichReporter:
    """A ``Reporter`` drawing one progress bar per step."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console(),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def say(self, text: str) -> None:
        self._progress.console.print(text, markup=False)

    def start(self, step: str, total: float | None = None) -> None:
        label = _STEPS.get(step, step)
        self._tasks[step] = self._progress.add_task(label, total=total, note="")

    def advance(self, step: str, amount: float = 1.0, *, note: str = "") -> None:
        task = self._tasks.get(step)
        if task is not None:
            t = self._progress.tasks[self._progress.task_ids.index(task)]
            room = None if t.total is None else max(t.total - t.completed, 0)
            self._progress.update(task, advance=amount if room is None else min(amount, room),
                                  note=note)

    def finish(self, step: str, *, note: str = "") -> None:
        task = self._tasks.get(step)
        if task is not None:
            t = self._progress.tasks[self._progress.task_ids.index(task)]
            self._progress.update(task, total=t.total or 1, completed=t.total or 1, note=note)


def show_init(project: Project) -> None:
    cfg = project.config
    contract = project.contract()
    c = console()
    c.print(f"Created [bold]{project.file}[/] (project [bold]{cfg.name}[/], "
            f"task [bold]{cfg.problem.task}[/], target [bold]{cfg.problem.target or '-'}[/])")
    table = Table(title=f"Contract contracts/{contract.source}.yaml", title_justify="left")
    for col in ("column", "type", "nullable", "bounds / categories", "use"):
        table.add_column(col)
    for spec in contract.columns:
        if spec.allowed is not None:
            detail = ", ".join(spec.allowed[:6]) + (" ..." if len(spec.allowed) > 6 else "")
        elif spec.min is not None or spec.max is not None:
            detail = f"{_num(spec.min)} .. {_num(spec.max)}"
        else:
            detail = ""
        use = ("target" if spec.name == cfg.problem.target else
               "excluded" if spec.name in cfg.problem.exclude else
               "time + feature" if spec.name == cfg.problem.time_column else "feature")
        table.add_row(spec.name, spec.type, "yes" if spec.nullable else "no", detail, use)
    c.print(table)
    from rich.markup import escape

    from loopml.core.notes import exclude_notes

    notes = exclude_notes(project.file.read_text())
    if notes:
        c.print(f"Proposed leaving out {len(notes)} column(s) as suspected leaks or ids "
                f"(problem.exclude in {project.file.name}, each with why; delete a line to use "
                "the column again):")
        for column, why in notes.items():
            c.print(f"  [bold]{escape(column)}[/]: {escape(why)}")
    src = cfg.source(cfg.problem.source)
    if src.kind == "sql":
        what = f"table {src.table}" if src.table else "the query"
        c.print(f"The contract was inferred from a sample of the first rows of {what}; "
                "'loopml run' ingests them all"
                + (f", then only rows with a newer {src.watermark}." if src.watermark
                   else " (without --watermark, the whole table again when it changes)."))
    c.print("Review the contract, then run [bold]loopml run[/].")


def show_run(result: RunResult) -> None:
    c = console()
    table = Table(title="Run summary", title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("run", result.run_id)
    if result.ingests:
        for ing in result.ingests:
            r = ing.report
            table.add_row(
                f"ingest {ing.source}",
                f"{r.rows_in:,} rows in, {r.rows_accepted:,} accepted, "
                f"{r.rows_quarantined:,} quarantined ({r.duplicates:,} duplicates), "
                f"quality {r.quality_score:g}",
            )
    else:
        table.add_row("ingest", "no new files; trained on the existing clean table")
    table.add_row("splits", ", ".join(f"{k} {v:,}" for k, v in result.split_sizes.items()))
    if result.sampled is not None and not result.sampled.whole:
        table.add_row("trained on", result.sampled.note)
    lb = result.leaderboard
    for name, text in search_rows(lb):
        table.add_row(name, text)
    ev = result.evaluation
    table.add_row("test metrics", "  ".join(f"{k} {_num(v)}" for k, v in ev.metrics.items()))
    mv = result.model_version
    verdict = "[green]champion[/]" if result.decision.promote else "[yellow]challenger[/]"
    table.add_row("model", f"{mv.ref} -> {verdict}: {result.decision.reason}")
    table.add_row("time", f"{result.seconds:.1f} s")
    c.print(table)
    for part in (leaderboard_table(lb), frontier_table(lb)):
        if part is not None:
            c.print(part)
    c.print("Reports (open in a browser):")
    for name, path in result.reports.items():
        c.print(f"  {name}: {path}", markup=False, soft_wrap=True)


def search_rows(lb: Leaderboard) -> list[tuple[str, str]]:
    """The run summary's lines about the search: what was tried, what was chosen and why,
    and the ensemble's members with their weights."""
    tried = Counter(c.learner for c in lb.candidates)
    budget = "" if lb.budget_s is None else f" of {lb.budget_s:.0f} s"
    rows = [("candidates", f"{len(lb.candidates)} tried in {lb.seconds:.0f} s{budget}"
             + (", deterministic" if lb.deterministic else "") + " ("
             + ", ".join(f"{k} {v}" for k, v in tried.items()) + ")")]
    best = lb.best
    spread = "" if best.cv_std is None else f" ± {best.cv_std:.2g}"
    if best.valid_score is not None and best.cv_score is not None:  # chosen on validation
        spread += f", validation {_num(best.valid_score)}"
    rows.append(("chosen", f"{_name(best)} (cv {lb.metric} {_num(_score(best))}{spread})"
                 + (f": {lb.reason}" if lb.reason else "")))
    if lb.ensemble:
        rows.append(("ensemble", ", ".join(f"{n} {w:.2f}" for n, w in lb.ensemble)))
    return rows


def leaderboard_table(board: Leaderboard, rows: int = LEADERBOARD_ROWS) -> Table | None:
    """The leaderboard's best ``rows`` candidates: score and spread, fit and predict time,
    ensemble weight and status."""
    from loopml.pipeline import LEADERBOARD_COLUMNS, leaderboard_rows

    if not board.candidates:
        return None
    shown = min(rows, len(board.candidates))
    table = Table(title=f"Leaderboard: {shown} of {len(board.candidates)} candidates by cv "
                  f"{board.metric} (all in the model report)", title_justify="left")
    keep = [i for i, col in enumerate(LEADERBOARD_COLUMNS) if col not in ("origin", "status")]
    for i in keep:
        col = LEADERBOARD_COLUMNS[i]
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for cells in leaderboard_rows(board, shown):
        status = cells[-1]
        name = cells[0] if status == "ok" else f"{cells[0]} ({status.split(':')[0]})"
        table.add_row(name, *(cells[i] for i in keep[1:]))
    return table


def frontier_table(board: Leaderboard, points: int = FRONTIER_POINTS) -> Table | None:
    """The most accurate few points of the accuracy-versus-fit-time frontier, fastest first:
    what each step up in score cost in training and prediction time."""
    front = board.frontier()[-points:]
    if not front:
        return None
    table = Table(title=f"Frontier: cv {board.metric} against fit time (plotted in the "
                  "model report)", title_justify="left", min_width=72)
    for col in ("model", f"cv {board.metric}", "fit time", "predict / 1,000 rows"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for point in front:
        mark = " [bold]*[/]" if point == board.best else ""
        ms = point.predict_ms_per_1000
        predict = "-" if ms is None else f"{ms:.1f} ms"
        table.add_row(_name(point) + mark, _num(point.cv_score), f"{point.fit_time_s:.2f} s",
                      predict)
    return table


def show_reproduction(result: Any) -> None:
    c = console()
    verdict = "[green]identical[/]" if result.identical else "[red]different[/]"
    c.print(f"Reproduced {result.model} (run {result.run_id[:12]}): {verdict}")
    table = Table(show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("data", ", ".join(f"{t} version {v}" for t, v in result.lake_versions.items()))
    table.add_row("contract", "the project's (same fingerprint as the run's)"
                  if result.contract == "project" else "the model's own (saved in its bundle)")
    table.add_row("search", ("deterministic" if result.deterministic else "wall-clock budget")
                  + f", seed {result.seed}")
    table.add_row(f"test {result.compared}", f"{result.rows:,} rows, largest difference "
                  f"{result.max_abs_difference:.3g}")
    table.add_row(f"test {result.metric}", f"original {_num(result.original_score)}, "
                  f"rebuilt {_num(result.reproduced_score)}")
    c.print(table)
    c.print(result.summary, markup=False, soft_wrap=True)


def show_models(versions: list[ModelVersion]) -> None:
    c = console()
    if not versions:
        c.print("No models yet: run [bold]loopml run[/].")
        return
    table = Table(title="Models", title_justify="left")
    for col in ("model", "version", "aliases", "metric", "score", "created", "run"):
        table.add_column(col)
    for mv in versions:
        table.add_row(mv.name, str(mv.version), ", ".join(mv.aliases), mv.metric,
                      _num(mv.score), mv.created_at.strftime("%Y-%m-%d %H:%M"),
                      (mv.run_id or "")[:12])
    c.print(table)


def show_drift(report: DriftReport, path: Any) -> None:
    c = console()
    colour = {"ok": "green", "warn": "yellow", "alert": "red"}
    c.print(f"Drift of {report.model} v{report.version}: [bold {colour[report.status]}]"
            f"{report.status}[/] over {report.current_rows:,} logged predictions "
            f"(reference {report.reference_rows:,} rows)")
    table = Table(title_justify="left")
    for col in ("feature", "PSI", "status"):
        table.add_column(col)
    rows = sorted(report.features, key=lambda f: -f.psi)
    if report.prediction is not None:
        rows = [report.prediction, *rows]
    for f in rows[:15]:
        table.add_row(f.name, f"{f.psi:.3f}", f"[{colour[f.status]}]{f.status}[/]")
    if len(rows) > 15:
        table.add_row(f"... {len(rows) - 15} more", "", "")
    c.print(table)
    c.print("Report (open in a browser):")
    c.print(f"  {path}", markup=False, soft_wrap=True)


def show_demo(result: Any) -> None:
    c = console()
    table = Table(title="The loop, month by month", title_justify="left")
    columns = ("month", "served by", "labels back", "triggers", "decision",
               f"realised {result.metric}")
    for col in columns:
        table.add_column(col, overflow="fold")
    realised = {m: (v, value) for m, v, value in result.performance}
    for m in result.months:
        d = m.cycle.decision
        decision = ("-" if d is None else
                    f"[green]v{d.candidate_version} promoted[/]" if d.promote else
                    f"[yellow]v{d.candidate_version} not promoted[/]")
        value = realised.get(m.month, (None, None))[1]
        table.add_row(m.month, ", ".join(f"v{v}" for v in m.served_by),
                      f"{m.labels_for} ({m.accepted:,})" if m.labels_for else "-",
                      _kinds(m.cycle.triggers) or "-", decision, _num(value))
    c.print(table)
    lb = result.run.leaderboard
    c.print(f"The first model ({result.run.model_version.ref}):", markup=False)
    for name, text in search_rows(lb):
        c.print(f"  {name}: {text}", markup=False, soft_wrap=True)
    for part in (leaderboard_table(lb), frontier_table(lb)):
        if part is not None:
            c.print(part)
    c.print(f"Replayed {result.replayed:,} flights. Reports (open in a browser):")
    for name, path in result.run.reports.items():
        c.print(f"  {name}: {path}", markup=False, soft_wrap=True)
    c.print(f"  monitoring: {result.drift_report}", markup=False, soft_wrap=True)
    c.print(f"\nThe demo project is in [bold]{result.directory}[/]; try [bold]loopml events[/], "
            "[bold]loopml models[/] or [bold]loopml loop[/] inside it.")


def print_json(data: Any) -> None:
    """Strict JSON on stdout (no colours, no wrapping), for scripts and CI."""
    import json
    import sys

    from loopml.core.records import plain_json

    sys.stdout.write(json.dumps(plain_json(data), indent=2) + "\n")


def drift_json(report: DriftReport) -> dict[str, Any]:
    """A drift report's features as name, statistics (every number measured) and status."""
    from loopml.core.records import to_plain

    def feature(f: Any) -> dict[str, Any]:
        d = to_plain(f)
        stats = {k: v for k, v in d.items() if isinstance(v, (int, float))
                 and not isinstance(v, bool)}
        stats.update(d.get("stats") or {})
        return {"name": f.name, "kind": getattr(f, "kind", None), "status": f.status,
                "statistics": stats}

    return {
        "model": report.model, "version": report.version, "status": report.status,
        "window_start": report.window_start, "window_end": report.window_end,
        "rows": report.current_rows, "reference_rows": report.reference_rows,
        "features": [feature(f) for f in report.features],
        "prediction": None if report.prediction is None else feature(report.prediction),
    }


def show_cycle(cycle: LoopCycle) -> None:
    c = console()
    s = cycle.signals
    fired = _kinds(cycle.triggers) or "none"
    c.print(f"Loop cycle for [bold]{cycle.model}[/] (champion v{cycle.champion_version}): "
            f"{cycle.windows} window(s) checked, triggers: [bold]{fired}[/]")
    for t in cycle.triggers:
        c.print(f"  trigger {t.kind}: {t.reason}", markup=False)
    if s.realised is not None or s.estimated is not None:
        c.print(f"  {s.metric}: realised {_num(s.realised)}, estimated {_num(s.estimated)}, "
                f"reference {_num(s.reference_score)}; {s.new_labels:,} new labels",
                markup=False)
    d = cycle.decision
    if d is None:
        c.print(f"[green]No retraining:[/] {cycle.reason}")
    else:
        table = Table(title=f"Challenger v{cycle.challenger_version} (trained on "
                      f"{cycle.training_rows:,} rows) against champion v{cycle.champion_version}",
                      title_justify="left")
        for col in ("evidence", "rows", "metric", "champion", "challenger", "difference",
                    "interval"):
            table.add_column(col)
        for e in d.evidence:
            k = e.comparison
            table.add_row(e.name, f"{k.rows:,}", k.metric, _num(k.champion), _num(k.challenger),
                          f"{k.difference:+.4f}", f"[{k.low:+.4f}, {k.high:+.4f}] "
                          f"({k.confidence:.0%})")
        c.print(table)
        verdict = "[green]promoted[/]" if d.promote else "[yellow]not promoted[/]"
        c.print(f"Decision: {verdict}: {d.reason}", soft_wrap=True)
    c.print(f"({cycle.seconds:.1f} s)")


def show_events(events: list[dict[str, Any]]) -> None:
    c = console()
    if not events:
        c.print("No events yet.")
        return
    table = Table(title="Events (newest first)", title_justify="left")
    for col in ("id", "at", "kind", "subject", "what"):
        table.add_column(col, overflow="fold")
    for e in events:
        p = e["payload"] or {}
        what = p.get("reason") or p.get("event") or ", ".join(
            f"{k}={v}" for k, v in list(p.items())[:4] if not isinstance(v, (dict, list)))
        at = e["at"].strftime("%Y-%m-%d %H:%M:%S") if hasattr(e["at"], "strftime") else e["at"]
        table.add_row(str(e["id"]), str(at), e["kind"], e["subject"], str(what)[:200])
    c.print(table)


def show_lineage(found: dict[str, Any]) -> None:
    """A request's lineage: what it scored, the model version, the run, the lake versions
    and contract, and the ingests behind them."""
    c = console()
    table = Table(title=f"Lineage of request {found['request_id']}", title_justify="left",
                  show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = found["predictions"]
    answered = ", ".join(f"{r.get('_prediction')}" for r in rows[:5]) + (
        ", ..." if len(rows) > 5 else "")
    table.add_row("records", f"{len(rows)} scored: {answered}")
    model = found["model"] or {}
    aliases = ", ".join(model.get("aliases") or ()) or "-"
    table.add_row("model", f"{found['model_name']}@{found['version']} (aliases: {aliases}; "
                  f"test {model.get('metric', '')} {_num(model.get('score'))})")
    run = found["run"]
    if run is None:
        table.add_row("run", "none recorded (the model was registered without a run)")
    else:
        table.add_row("run", f"{run['id']} ({run['kind']}, {run['status']}, started "
                      f"{str(run['started_at'])[:19]}, git {run.get('git_commit') or '-'})")
        table.add_row("lake versions", ", ".join(
            f"{t} v{v}" for t, v in found["lake_versions"].items()) or "-")
        table.add_row("contract", str(found["contract_fingerprint"] or "-"))
    if found.get("trained_on"):
        from loopml.core.records import TableSample

        table.add_row("trained on", TableSample(**found["trained_on"]).note)
    if found["shadow"]:
        table.add_row("shadow", f"{len(found['shadow'])} rows scored by v"
                      f"{found['shadow'][0].get('_model_version')}")
    c.print(table)
    if found["sources"]:
        ingests = Table(title="Ingests behind those lake versions (oldest first)",
                        title_justify="left")
        for col in ("ingest", "source", "files or cursor", "rows in", "accepted", "clean"):
            ingests.add_column(col, overflow="fold")
        for i in found["sources"]:
            files = ", ".join(i.get("files") or ()) or "-"
            clean = i.get("clean") or {}
            ingests.add_row(str(i["ingest_id"])[:12], str(i["source"]), files[:200],
                            f"{i['rows_in']:,}", f"{i['rows_accepted']:,}",
                            f"{clean.get('name')} v{clean.get('version')}")
        c.print(ingests)


def show_check(report: CheckReport) -> None:
    c = console()
    table = Table(title=f"Check of {report.model} v{report.version}", title_justify="left")
    for col in ("check", "value", "limit", "result", "detail"):
        table.add_column(col, overflow="fold")
    for i in report.items:
        result = "[green]pass[/]" if i.passed else "[red]FAIL[/]"
        table.add_row(i.name, _num(i.value), _num(i.threshold), result, i.detail)
    if not report.items:
        table.add_row("(nothing to check)", "-", "-", "[green]pass[/]",
                      "no decision evidence and no loop.floors")
    c.print(table)
    if report.passed:
        c.print(f"[green]v{report.version} passes.[/]")
    else:
        c.print(f"[red]v{report.version} fails {sum(not i.passed for i in report.items)} "
                "check(s).[/]")


def _name(c: Candidate) -> str:
    return c.name or c.learner


def _score(c: Candidate) -> float | None:
    return c.cv_score if c.cv_score is not None else c.valid_score


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _kinds(triggers: Any) -> str:
    """The kinds of the triggers that fired, each once (decay can fire on the realised and on
    the estimated metric)."""
    return ", ".join(dict.fromkeys(t.kind for t in triggers))
