"""The ``loopml`` command. Each command parses, calls one API function and renders the result.

Only Typer is imported at start-up; everything heavy loads inside the command that needs it,
so ``loopml --help`` is fast.
"""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, TypeVar

import typer

from loopml.core.errors import LoopmlError

app = typer.Typer(
    name="loopml",
    help="The whole machine-learning lifecycle for tabular data as one loop: ingest, "
    "validate, profile, train, evaluate, register, serve, monitor, and retrain and promote "
    "on evidence when the ground truth comes back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

ProjectOpt = Annotated[
    Optional[Path],
    typer.Option("--project", "-p", help="Project folder (default: the one holding loopml.yaml "
                 "here or above).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts and CI.")]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model as NAME@ALIAS or NAME@VERSION "
                 "(default: <project>@champion).", show_default=False),
]

ClusterOpt = Annotated[
    Optional[str],
    typer.Option("--cluster", help="Run per table part here ('local') or on the Dask "
                 "scheduler at this address, e.g. tcp://scheduler:8786 (default: "
                 "compute.cluster; a cluster needs a PostgreSQL catalog).", show_default=False),
]


class TaskChoice(str, Enum):
    auto = "auto"
    classification = "classification"
    regression = "regression"
    clustering = "clustering"


def friendly(fn: F) -> F:
    """Print a LoopmlError as headline, message and hint, and exit non-zero; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoopmlError as exc:
            from loopml.cli._render import print_error

            print_error(exc)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _project(path: Path | None) -> Any:
    from loopml.pipeline import Project

    return Project(path) if path is not None else Project.find()


@app.command()
@friendly
def init(
    data: Annotated[Optional[str], typer.Argument(help="A data file, a folder or a glob such as 'data/*.csv', or a database URL such as postgresql://USER@HOST:PORT/DB (mysql://, mariadb://, sqlite:///; write a password as ${VAR}) (leave out with --ci in an existing project).", show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="The column to predict (leave out for clustering).")] = None,
    task: Annotated[TaskChoice, typer.Option(help="What to learn; 'auto' decides from the target.")] = TaskChoice.auto,
    time_column: Annotated[Optional[str], typer.Option("--time-column", help="Split by this timestamp column: the newest rows are the test set.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", "-x", help="A column never to use as a feature (repeatable), e.g. one that leaks the target.")] = None,
    directory: Annotated[Path, typer.Option("--dir", "-d", help="Where to create the project.")] = Path("."),
    name: Annotated[Optional[str], typer.Option(help="Project and model name (default: the folder's name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing loopml.yaml (and workflow).")] = False,
    ci: Annotated[bool, typer.Option("--ci", help="Also write .github/workflows/loopml.yml, a GitHub Actions workflow running 'loopml run' then 'loopml check'.")] = False,
    table: Annotated[Optional[str], typer.Option("--table", help="With a database URL: the table to read (schema.table also works).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="With a database URL: a SELECT to read instead of a table.")] = None,
    watermark: Annotated[Optional[str], typer.Option("--watermark", help="With a database URL: a column that grows (a timestamp or id); each ingest then reads only newer rows.")] = None,
) -> None:
    """Create a project from a data file or a database table.

    Writes loopml.yaml and the inferred data contract contracts/SOURCE.yaml; with
    --ci also a ready GitHub Actions workflow (without DATA: for the existing project).
    A database table's contract is inferred from its first 100,000 rows.
    """
    from loopml.cli._render import console, show_init
    from loopml.core.errors import ConfigError
    from loopml.pipeline import Project

    if data is None:
        if not ci:
            raise ConfigError("Name the data to create the project from.",
                              hint="loopml init DATA --target COLUMN (or --ci alone in a project).")
        project = Project.find(directory)
    else:
        with console().status("Reading the data and inferring its contract ..."):
            project = Project.init(
                data, target=target, task=task.value, time_column=time_column,
                exclude=tuple(exclude or ()), directory=directory, name=name, force=force,
                table=table, query=query, watermark=watermark,
            )
        show_init(project)
    if ci:
        path = project.write_ci(force=force)
        console().print(f"Wrote [bold]{path}[/]: it runs 'loopml run' then 'loopml check'.")


@app.command()
@friendly
def run(
    time_budget: Annotated[Optional[int], typer.Option("--time-budget", min=1, help="Seconds for the model search (default: training.time_budget_s).")] = None,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Count trials instead of watching the clock, so the same data, settings and seed give the same model on any machine (default: training.deterministic).")] = False,
    cluster: ClusterOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Train, evaluate and register a model.

    Ingests new files, validates them (bad rows to quarantine), profiles, splits,
    searches models within the time budget, evaluates on the test split once and
    registers the winner (champion only if it beats the current one). Prints the
    accuracy-versus-fit-time frontier and why the winner won. On a Dask cluster
    (--cluster or compute.cluster) the search's trials run on the workers and
    LightGBM / XGBoost final fits on all of them together.
    """
    from loopml.cli._render import RichReporter, show_run

    proj = _project(project)
    with proj, RichReporter() as reporter:
        result = proj.run(time_budget=time_budget, deterministic=deterministic or None,
                          cluster=cluster, reporter=reporter)
    show_run(result)


@app.command()
@friendly
def reproduce(
    ref: Annotated[str, typer.Argument(help="The model as NAME@VERSION (or NAME@ALIAS).", show_default=False)],
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Rebuild a model from what its run recorded and compare.

    Retrains from the lake version of the clean table the run read, its contract,
    config and seed, with the same split, and says whether the rebuilt model's
    test-split predictions equal the original's (exactly, and the largest
    difference of probabilities). Runs trained with --deterministic rebuild exactly.
    The outcome is recorded as a 'reproduce' event. Exits 1 when they differ.
    """
    from contextlib import nullcontext

    from loopml.cli._render import RichReporter, print_json, show_reproduction
    from loopml.core.records import to_plain

    proj = _project(project)
    progress = nullcontext(None) if as_json else RichReporter()
    with proj, progress as reporter:
        kwargs = {} if reporter is None else {"reporter": reporter}
        result = proj.reproduce(ref, **kwargs)
    if as_json:
        print_json(to_plain(result))
    else:
        show_reproduction(result)
    if not result.identical:
        raise typer.Exit(code=1)


@app.command()
@friendly
def serve(
    model: ModelOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on (default: serving.host).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: serving.port).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Processes sharing the port (default: serving.workers, 1).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve a model over HTTP.

    POST /predict, POST /feedback, POST /reload, GET /health, /ready, /metrics,
    /lineage/ID, OpenAPI at /docs. Every prediction is logged to the lake table
    predictions/MODEL; the server follows the model's alias (promotions and rollbacks
    take effect without a restart), in every worker.
    """
    proj = _project(project)
    with proj:
        proj.serve(model=model, host=host, port=port, workers=workers)


@app.command()
@friendly
def predict(
    data: Annotated[Optional[Path], typer.Argument(help="File to score (CSV, Parquet or NDJSON); leave out with --table.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the scored rows (.csv, .parquet, .ndjson).")] = Path("predictions.parquet"),
    table: Annotated[Optional[str], typer.Option("--table", help="Score a lake table instead, e.g. clean/SOURCE, one Parquet file at a time.", show_default=False)] = None,
    version: Annotated[Optional[int], typer.Option("--version", min=0, help="With --table: the table version (default: the latest).", show_default=False)] = None,
    model: ModelOpt = None,
    cluster: ClusterOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Score a file or a lake table in batch.

    Rows that break the contract get a reason (_reasons) instead of a score. A table is
    scored file by file, on the Dask cluster when one is set (--cluster or
    compute.cluster), with the same predictions as in one process.
    """
    from loopml.cli._render import console

    proj = _project(project)
    with proj, console().status(f"Scoring {data or table} ..."):
        path = proj.predict(data, out, model=model, table=table, version=version,
                            cluster=cluster)
    console().print(f"Wrote [bold]{path}[/]")


@app.command()
@friendly
def models(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """List model versions with their aliases and test metrics."""
    from loopml.cli._render import print_json, show_models
    from loopml.core.records import to_plain

    proj = _project(project)
    with proj:
        versions = proj.models()
    if as_json:
        print_json([{**to_plain(mv), "ref": mv.ref} for mv in versions])
    else:
        show_models(versions)


@app.command()
@friendly
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "champion",
    project: ProjectOpt = None,
) -> None:
    """Make a model version champion."""
    from loopml.cli._render import console

    proj = _project(project)
    with proj:
        mv = proj.promote(name, version, alias=alias)
    console().print(f"{mv.name} v{mv.version} is now [bold]{alias}[/].")


@app.command()
@friendly
def monitor(model: ModelOpt = None, as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Measure drift of logged predictions.

    Compares the logged predictions of a model version with its training data
    (per feature and for the prediction) and writes an HTML report; --json prints
    each feature's name, statistics and status.
    """
    from contextlib import nullcontext

    from loopml.cli._render import console, drift_json, print_json, show_drift

    proj = _project(project)
    status = nullcontext() if as_json else console().status("Measuring drift ...")
    with proj, status:
        report, path = proj.monitor(model=model)
    if as_json:
        print_json({**drift_json(report), "report": str(path)})
    else:
        show_drift(report, path)


@app.command()
@friendly
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo project.")] = Path("demo-project"),
    time_budget: Annotated[int, typer.Option("--time-budget", min=5, help="Seconds for each model search (the first run and each retraining).")] = 12,
    month_rows: Annotated[int, typer.Option("--month-rows", min=100, help="July-December flights sent through the server per month.")] = 1500,
    train_rows: Annotated[int, typer.Option("--train-rows", min=1000, help="January-June flights to train on (a sample).")] = 30_000,
) -> None:
    """Run the NYC flights demo: the whole loop, month by month.

    Trains on January-June 2013, serves the champion, replays July-December
    month by month through HTTP, sends each month's ground truth a month late
    through /feedback and runs one loop cycle after each month, printing each
    decision with its evidence.
    """
    from loopml.cli._render import RichReporter, console, show_demo
    from loopml.pipeline import demo as run_demo

    with RichReporter() as reporter:
        result = run_demo(directory, time_budget=time_budget, month_rows=month_rows,
                          train_rows=train_rows, reporter=reporter, say=reporter.say)
    show_demo(result)
    console().print(f"[green]Demo finished in {result.seconds:.0f} s.[/]")


@app.command()
@friendly
def loop(
    watch: Annotated[bool, typer.Option("--watch", help="Repeat until stopped (Ctrl-C or SIGTERM).")] = False,
    every: Annotated[Optional[str], typer.Option("--every", help="Pause between cycles with --watch, e.g. 10m (default: loop.every).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Run one cycle of the loop and say what it decided and why.

    Monitors the champion's prediction log windows with the ground truth sent back,
    checks the retraining triggers of loop: in loopml.yaml and, if one fires, trains
    a challenger on the clean data plus the labelled predictions, scores both models
    on the same evidence (the newest labelled window and the held-out test split)
    and promotes the challenger only when it wins with an interval above zero.
    """
    from loopml.cli._render import console, print_error, show_cycle
    from loopml.core.config import duration_s

    proj = _project(project)
    with proj:
        if not watch:
            with console().status("Running one loop cycle ..."):
                cycle = proj.loop_once()
            show_cycle(cycle)
            return
        every_s = None if every is None else duration_s(every)
        console().print(f"Watching every {every or proj.config.loop.every}; "
                        "Ctrl-C or SIGTERM stops after the current cycle.")
        cycles = proj.watch(every_s=every_s, on_cycle=show_cycle, on_error=print_error)
    console().print(f"Stopped after {cycles} cycle(s).")


@app.command()
@friendly
def rollback(
    name: Annotated[Optional[str], typer.Argument(help="Model name (default: the project's model).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Restore the previous champion.

    Moves the champion alias back to the version that was champion before the
    current one (from the alias history), records a rollback event and alerts.
    """
    from loopml.cli._render import console

    proj = _project(project)
    with proj:
        mv, replaced = proj.rollback(name)
    console().print(f"{mv.name} v{mv.version} is champion again (v{replaced} rolled back).")


@app.command()
@friendly
def events(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Only this kind: decision, promote, rollback, alert, retrain, monitor ...", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """List the catalog's events, newest first.

    Decisions carry their evidence: both models' scores on the same rows, the
    interval of the difference, the windows and the triggers.
    """
    from loopml.cli._render import print_json, show_events

    proj = _project(project)
    with proj:
        found = proj.events(kind=kind, limit=limit)
    if as_json:
        print_json(found)
    else:
        show_events(found)


@app.command()
@friendly
def lineage(
    request_id: Annotated[str, typer.Argument(help="The request id (the answer's request_id, or its X-Request-ID header).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="The model the request went to (default: the project's).", show_default=False)] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Show where a served prediction came from.

    The records it scored and what was answered, the model version, the run that
    trained it, the lake table versions and contract that run read, and the ingests
    (source files or cursors) behind those versions.
    """
    from loopml.cli._render import print_json, show_lineage

    proj = _project(project)
    with proj:
        found = proj.lineage(request_id, model=model)
    if as_json:
        print_json(found)
    else:
        show_lineage(found)


@app.command()
@friendly
def check(project: ProjectOpt = None) -> None:
    """Gate a model in CI: exit non-zero when it should not ship.

    Fails when the newest model version is worse than the champion on the same
    evidence (its recorded decision) or below a floor in loop.floors.
    """
    from loopml.cli._render import show_check

    proj = _project(project)
    with proj:
        report = proj.check()
    show_check(report)
    if not report.passed:
        raise typer.Exit(code=1)


@app.command()
@friendly
def feedback(
    data: Annotated[Path, typer.Argument(help="Labels: CSV, Parquet or NDJSON with 'label' and 'request_id'+'record' or the id column.")],
    model: ModelOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Send ground truth for logged predictions.

    Labels are upserted into the lake table feedback/MODEL: sending a label twice changes
    nothing, a corrected label replaces the old one. Unknown keys and labels the model
    cannot have are counted and listed.
    """
    from loopml.cli._render import console

    proj = _project(project)
    with proj, console().status(f"Reading labels from {data} ..."):
        result = proj.feedback(data, model=model)
    console().print(
        f"Accepted [bold]{result.accepted}[/], unknown {result.unknown}, invalid {result.invalid}."
    )
    for problem in result.problems:
        console().print(f"  {problem}", markup=False, highlight=False)


def _register_data_commands() -> None:
    from loopml.cli._data import register

    register(app)


_register_data_commands()


# sub-apps register last: they import the helpers above
from loopml.cli._deadletters import dead_letters_app  # noqa: E402
from loopml.cli._deploy import deploy_app  # noqa: E402
from loopml.cli._lake import lake_app  # noqa: E402

app.add_typer(lake_app, name="lake")
app.add_typer(deploy_app, name="deploy")
app.add_typer(dead_letters_app, name="dead-letters")
