"""The loop at 1, 10 and 50 million rows on one machine, and at 10 million on a 2-worker Dask
``LocalCluster`` against the single process: rows/s and peak RSS of each stage.

A generated CSV of ``N`` rows x 20 mixed columns (an id, floats and integers with some nulls,
categories of 5 to 2,000 values, two dates, two booleans, a free-text code and a binary
``label`` with real signal in six of the columns), written in slices of 500,000 rows. A
project is made by ``loopml init`` on a clean 20,000-row sample drawn alike (not measured),
then the data file is put in the sample's place and each stage runs as its own CLI process,
one after another, as a user runs them:

    loopml ingest             CSV -> raw, clean and quarantine Delta tables, chunk by chunk
    loopml validate           the clean table validated again, part by part
    loopml profile            the profile report (of the training sample beyond the limit)
    loopml run --time-budget  train on a sample of compute.sample_rows rows, evaluate, register
    loopml predict --table    the whole clean table scored, written and logged batch by batch

Each stage's wall seconds, rows/s (of the table's rows) and peak RSS are measured from
outside: RSS summed over the CLI process and its children (and, in ``--cluster`` mode, the
cluster's worker processes), polled every 0.2 s. ``--cluster`` runs the stages validate,
profile, predict and run at 10 M rows both in one process and on a ``distributed.LocalCluster``
of two worker processes (one thread each), with the catalog in a fresh PostgreSQL database.

Targets: cost grows linearly in rows (rows/s flat across sizes), peak RSS flat in rows beyond
``compute.sample_rows``, and the 50 M run under 6 GB. Writes ``bench/results/scale.json``,
``scale.md`` and ``scale.png`` (results of earlier sizes are kept, newer ones replace them).

    .venv/bin/python bench/scale.py                     # 1 M and 10 M rows
    .venv/bin/python bench/scale.py --rows 50000000     # the big run
    .venv/bin/python bench/scale.py --cluster           # 10 M: LocalCluster vs one process
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.json"
TABLE = HERE / "results" / "scale.md"
PLOT = HERE / "results" / "scale.png"
TARGET_RSS_MB = 6144
PG_URL = os.environ.get("LOOPML_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
STAGES = ("ingest", "validate", "profile", "run", "predict")
SLICE = 500_000


# ---- the data ----------------------------------------------------------------------------------


def write_csv(path: Path, rows: int, *, seed: int = 0, id_step: int = 1) -> None:
    """``rows`` lines of 20 columns, written ``SLICE`` rows at a time (bounded memory)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    regions = np.array(["north", "south", "east", "west", "centre"])
    plans = np.array(["free", "basic", "pro", "team", "enterprise", "edu", "trial", "legacy"])
    with path.open("wb") as fh:
        for start in range(0, rows, SLICE):
            n = min(SLICE, rows - start)
            tenure = rng.gamma(2.0, 12.0, n)
            spend = rng.lognormal(3.0, 1.0, n)
            visits = rng.poisson(6, n)
            errors = rng.poisson(0.5, n)
            plan = rng.integers(0, len(plans), n)
            region = rng.integers(0, len(regions), n)
            mobile = rng.random(n) < 0.45
            x1, x2, x3 = rng.normal(size=(3, n))
            logit = (-0.9 + 0.6 * x1 - 0.4 * x2 + 0.05 * visits - 0.4 * errors
                     - 0.02 * tenure + 0.25 * (plan >= 3) + 0.3 * mobile)
            label = rng.random(n) < 1 / (1 + np.exp(-logit))
            signup = np.datetime64("2020-01-01") + rng.integers(0, 1500, n).astype("timedelta64[D]")
            last = signup + rng.integers(0, 400, n).astype("timedelta64[D]")

            def holes(values, share):
                out = values.astype(object)
                out[rng.random(n) < share] = None
                return out.tolist()

            frame = pl.DataFrame({
                "id": np.arange(start + 1, start + n + 1) * id_step,
                "tenure_months": np.round(tenure, 1),
                "monthly_spend": holes(np.round(spend, 2), 0.02),
                "visits": visits,
                "support_errors": errors,
                "x1": np.round(x1, 4),
                "x2": holes(np.round(x2, 4), 0.05),
                "x3": np.round(x3, 4),
                "discount": np.round(rng.random(n) * 0.3, 3),
                "plan": plans[plan],
                "region": regions[region],
                "city": np.char.add("city", rng.integers(0, 2000, n).astype(str)),
                "device": np.where(mobile, "mobile", np.where(rng.random(n) < 0.7, "desktop",
                                                              "tablet")),
                "channel": holes(np.array(["ads", "search", "referral", "direct"])[
                    rng.integers(0, 4, n)], 0.01),
                "signup_date": signup,
                "last_seen": last,
                "newsletter": rng.random(n) < 0.3,
                "mobile": mobile,
                "code": np.char.add("c-", rng.integers(0, 10**6, n).astype(str)),
                "label": np.where(label, "yes", "no"),
            }, strict=False)  # fmt: skip
            frame.write_csv(fh, include_header=start == 0)


# ---- measuring a stage -------------------------------------------------------------------------


def _tree_rss(pids: list[int]) -> int:
    """Bytes resident in the processes ``pids`` and all their children."""
    import psutil

    seen: set[int] = set()
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


def stage(name: str, args: list[str], folder: Path, rows: int, *, also: list[int] = (),
          log: Path) -> dict:
    """One CLI command in ``folder``: wall seconds, rows/s and peak RSS of its process tree
    (plus the processes ``also``, e.g. a cluster's workers), polled every 0.2 s."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    base = _tree_rss(list(also)) if also else 0
    with log.open("a") as out:
        out.write(f"\n$ loopml {' '.join(args)}\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "loopml", *args], cwd=folder, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss([proc.pid, *also]))
                done.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # the bench stopped: stop the stage too
            proc.kill()
            proc.wait()
            raise
        finally:
            done.set()
            poller.join()
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ((0, 1) if name.startswith("validate") else (0,)):  # validate: 1 = bad rows
        raise SystemExit(f"loopml {' '.join(args)} failed ({code}); see {log}")
    peak_mb = max(peak[0], usage.ru_maxrss * 1024) / 2**20
    result = {"stage": name, "seconds": round(seconds, 2), "rows": rows,
              "rows_per_s": round(rows / seconds), "peak_rss_mb": round(peak_mb),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "exit_code": code}
    if also:
        result["cluster_rss_before_mb"] = round(base / 2**20)
    print(f"  {name:<18} {seconds:8.1f} s {rows / seconds:>12,.0f} rows/s "
          f"{peak_mb:8,.0f} MB", flush=True)
    return result


# ---- a size ------------------------------------------------------------------------------------


def make_project(folder: Path, rows: int, *, catalog_url: str | None, budget: int,
                 ensemble: bool = True) -> None:
    """The data file and a project inferred from a sample drawn alike."""
    import yaml

    folder.mkdir(parents=True)
    started = time.perf_counter()
    write_csv(folder / "full.csv", rows)
    print(f"  data: {rows:,} rows, {(folder / 'full.csv').stat().st_size / 2**30:.1f} GiB "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    write_csv(folder / "data.csv", 20_000, seed=1, id_step=max(rows // 20_000, 1))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "loopml", "init", "data.csv", "--target", "label",
                    "--name", "scale"], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    config = yaml.safe_load((folder / "loopml.yaml").read_text())
    config["training"] = {**config.get("training", {}), "time_budget_s": budget,
                          "learners": ["lightgbm"], "cv_folds": 2, "ensemble": ensemble}
    if catalog_url is not None:
        config["storage"]["catalog_url"] = catalog_url
    (folder / "loopml.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(folder / "full.csv", folder / "data.csv")


def one_size(work: Path, rows: int, *, budget: int, done: Any = None,
             ensemble: bool = True, stages: tuple[str, ...] = STAGES) -> dict:
    """The five stages on ``rows`` rows (up to the last of ``stages``, measuring those);
    ``done(partial)`` after each, so that a run stopped part-way keeps what it measured."""
    print(f"{rows:,} rows", flush=True)
    folder = work / f"rows-{rows}"
    started = time.perf_counter()
    make_project(folder, rows, catalog_url=None, budget=budget, ensemble=ensemble)
    generated = round(time.perf_counter() - started)
    log = folder / "stages.log"
    out: list[dict] = []
    commands = {"ingest": ["ingest"], "validate": ["validate"], "profile": ["profile"],
                "run": ["run", "--time-budget", str(budget)],
                "predict": ["predict", "--table", "clean/data", "-o", "scored.parquet"]}
    last = max(STAGES.index(name) for name in stages)

    def measured(result: dict) -> None:
        out.append({**result, "date": time.strftime("%Y-%m-%d")})
        if done is not None:
            done({"rows": rows, "stages": out, "complete": False, "data_seconds": generated,
                  "ensemble": ensemble})

    try:
        for name in STAGES[:last + 1]:
            if name in stages:
                measured(stage(name, commands[name], folder, rows, log=log))
            else:  # needed by a later stage, not measured
                stage(name, commands[name], folder, rows, log=log)
    finally:
        details = {**_details(folder), "model": chosen_model(log)} if "run" in stages else {}
        shutil.copy(log, work / f"stages-{rows}.log")
        shutil.rmtree(folder, ignore_errors=True)
    return {"rows": rows, "stages": out, "complete": len(out) == len(stages),
            "data_seconds": generated, "ensemble": ensemble, **details}


def chosen_model(log: Path) -> str | None:
    """The model ``loopml run`` chose (what batch scoring runs): its name in the run's
    summary, with the members and weights of an ensemble from the leaderboard."""
    if not log.exists():
        return None
    lines = log.read_text().splitlines()
    name = next((ln.split("│")[2].split(" (")[0].strip() for ln in lines if "│ chosen" in ln),
                None)
    members = []
    if "Leaderboard:" in "\n".join(lines):
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Leaderboard:"))
        for ln in lines[start:]:
            if ln.startswith("└"):
                break
            cells = [c.strip() for c in ln.split("│")[1:-1]]
            if len(cells) >= 6 and cells[-1] and cells[-1] != "weight":
                members.append(f"{cells[0]} x{cells[-1]}")
    return f"{name} of {', '.join(members)}" if name and members else name


def _details(folder: Path) -> dict:
    """What the stages did, from the catalog: the clean rows, the sample trained on, the
    model's test score."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = (
        "import json;from loopml.pipeline import Project\n"
        "p=Project('loopml.yaml')\n"
        "e=p.catalog.events(kind='trained_on',limit=1)\n"
        "m=p.catalog.events(kind='predict',limit=1)\n"
        "print(json.dumps({'trained_on':e[0]['payload'] if e else None,"
        "'predict':m[0]['payload'] if m else None}, default=str))"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - details are a bonus to the measurement
        return {"details_error": str(exc)[:200]}


def cluster_size(work: Path, rows: int, *, budget: int, ensemble: bool = True,
                 done: Any = None) -> dict:
    """``rows`` on a 2-worker LocalCluster against one process: validate, profile, predict
    (the same champion: predictions compared) and run (the search's trials on the workers)."""
    import sqlalchemy as sa
    from distributed import LocalCluster

    print(f"{rows:,} rows: LocalCluster of 2 workers against one process", flush=True)
    database = f"loopml_scale_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {database}")
    url = sa.make_url(PG_URL).set(database=database).render_as_string(hide_password=False)
    folder = work / f"cluster-{rows}"
    log, log_copy = folder / "stages.log", work / f"stages-cluster-{rows}.log"
    out: list[dict] = []

    def measured(result: dict) -> None:  # kept when the bench is stopped part-way
        out.append({"where": "local", **result})
        if done is not None:
            done({"rows": rows, "stages": out, "same_predictions": None, "workers": 2,
                  "threads_per_worker": 1, "ensemble": ensemble, "budget": budget,
                  "complete": False})

    try:
        make_project(folder, rows, catalog_url=url, budget=budget, ensemble=ensemble)
        measured(stage("ingest", ["ingest"], folder, rows, log=log))
        measured(stage("run", ["run", "--time-budget", str(budget)], folder, rows, log=log))
        measured(stage("validate", ["validate"], folder, rows, log=log))
        measured(stage("profile", ["profile"], folder, rows, log=log))
        measured(stage("predict", ["predict", "--table", "clean/data", "-o",
                                   "local.parquet"], folder, rows, log=log))
        env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                          dashboard_address=None, env=env, silence_logs=40,
                          memory_limit="3GiB") as local:
            workers = [w.pid for w in _worker_procs()]
            address = local.scheduler_address
            for name, args in (("validate", ["validate", "--cluster", address]),
                               ("profile", ["profile", "--cluster", address]),
                               ("predict", ["predict", "--table", "clean/data", "-o",
                                            "cluster.parquet", "--cluster", address]),
                               ("run", ["run", "--time-budget", str(budget),
                                        "--cluster", address])):  # last: a new version
                result = stage(f"{name} (cluster)", args, folder, rows, also=workers, log=log)
                result["stage"] = name
                result["where"] = "cluster"
                measured(result)
        same = _same_scores(folder / "local.parquet", folder / "cluster.parquet")
    finally:
        if log.exists():
            shutil.copy(log, log_copy)
        shutil.rmtree(folder, ignore_errors=True)
        admin.dispose()
        time.sleep(1)
        with sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return {"rows": rows, "stages": out, "same_predictions": same, "workers": 2,
            "threads_per_worker": 1, "ensemble": ensemble, "budget": budget,
            "model": chosen_model(log_copy)}


def _worker_procs() -> list:
    import psutil

    return [p for p in psutil.Process().children(recursive=True)]


def _same_scores(a: Path, b: Path) -> bool:
    import polars as pl

    columns = ["_prediction", "_score"]
    return pl.read_parquet(a, columns=columns).equals(pl.read_parquet(b, columns=columns))


# ---- results -----------------------------------------------------------------------------------


def write_results(results: dict) -> None:
    """Write this process's sizes over what the file holds (another size may be running in
    another process), then the table and the plot of all."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    held = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"sizes": {}}
    for size, run in results["sizes"].items():
        if run.get("only") and size in held["sizes"]:  # some stages re-measured
            run = _merged(held["sizes"][size], run)
        held["sizes"][size] = {k: v for k, v in run.items() if k != "only"}
    results = {**held, **{k: v for k, v in results.items() if k != "sizes"},
               "sizes": held["sizes"]}
    if results.get("cluster") is None:
        results.pop("cluster", None)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, RESULTS)
    TABLE.write_text(markdown(results))
    plot(results)


def _merged(before: dict, run: dict) -> dict:
    """``before`` with the stages of ``run`` in place of its own of those names."""
    new = {s["stage"]: s for s in run["stages"]}
    return {**before, "stages": [new.pop(s["stage"], s) for s in before["stages"]]
            + list(new.values())}


def markdown(results: dict) -> str:
    lines = [
        "# Scale: the loop from 1 to 50 million rows",
        "",
        f"Machine: {results['machine']}. Generated table: 20 mixed columns; "
        f"`compute.sample_rows` {results['sample_rows']:,}; `loopml run --time-budget "
        f"{results.get('budget', '?')}` (LightGBM, 2 folds). Each stage is one CLI process; "
        "peak RSS is summed over its process tree (and the cluster's workers), polled every "
        "0.2 s.",
        "",
        "| rows | stage | where | seconds | rows/s | CPU seconds | rows per CPU second | "
        "peak RSS (MB) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    runs = sorted(results["sizes"].values(), key=lambda r: r["rows"])
    runs += [results["cluster"]] if results.get("cluster") else []
    for run in runs:
        for s in run["stages"]:
            per_cpu = round(s.get("rows", run["rows"]) / max(s["cpu_seconds"], 0.01))
            lines.append(f"| {run['rows']:,} | {s['stage']} | {s.get('where', 'local')} | "
                         f"{s['seconds']:,.1f} | {s['rows_per_s']:,} | {s['cpu_seconds']:,.1f} "
                         f"| {per_cpu:,} | {s['peak_rss_mb']:,} |")
    lines += ["", "Targets: rows/s flat across sizes (linear cost); peak RSS flat beyond "
              f"the sampling limit; the largest run under {TARGET_RSS_MB:,} MB."]
    for run in sorted(results["sizes"].values(), key=lambda r: r["rows"]):
        if not run["stages"]:
            continue
        peak = max(s["peak_rss_mb"] for s in run["stages"])
        if run.get("model") and not run.get("ensemble", True):
            lines.append(f"- {run['rows']:,} rows: the run chose {run['model']} "
                         "(training.ensemble: false)")
        elif run.get("model"):
            lines.append(f"- {run['rows']:,} rows: the run chose {run['model']}; batch scoring "
                         "runs every member of it on every row")
        if not run.get("complete", True):
            lines.append(f"- {run['rows']:,} rows: stopped after {run['stages'][-1]['stage']} "
                         f"(peak RSS so far {peak:,} MB)")
            continue
        sampled = (run.get("trained_on") or {})
        lines.append(f"- {run['rows']:,} rows: peak RSS {peak:,} MB over all stages "
                     f"({'under' if peak < TARGET_RSS_MB else 'OVER'} the target); trained on "
                     f"{sampled.get('rows_read', '?'):,} of {sampled.get('rows_in_table', '?'):,} "
                     "clean rows" if sampled else f"- {run['rows']:,} rows: peak RSS {peak:,} MB")
    if results.get("cluster"):
        c = results["cluster"]
        lines.append(f"- {c['rows']:,} rows on a LocalCluster of {c['workers']} workers: "
                     + {True: "predictions identical to one process's",
                        False: "predictions DIFFERENT from one process's",
                        None: "stopped before the predictions were compared"}[
                         c.get("same_predictions")]
                     + f"; `run --time-budget {c.get('budget', results.get('budget'))}`"
                     + f"; the scored model: {c.get('model') or '?'}"
                     f"{'' if c.get('ensemble', True) else ' (training.ensemble: false)'}.")
    notes = results.get("notes") or []
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(results["sizes"].values(), key=lambda r: r["rows"])
    if not runs:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in STAGES:
        points = [(r["rows"], s) for r in runs for s in r["stages"] if s["stage"] == name]
        if not points:
            continue
        xs = [p[0] for p in points]
        left.plot(xs, [p[1]["seconds"] for p in points], marker="o", label=name)
        right.plot(xs, [p[1]["peak_rss_mb"] for p in points], marker="o", label=name)
    cluster = results.get("cluster")
    if cluster:
        for s in cluster["stages"]:
            if s.get("where") == "cluster":
                left.scatter([cluster["rows"]], [s["seconds"]], marker="x", color="black")
                right.scatter([cluster["rows"]], [s["peak_rss_mb"]], marker="x", color="black")
    for ax, title, unit in ((left, "wall time per stage", "seconds"),
                            (right, "peak RSS per stage", "MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    right.axhline(TARGET_RSS_MB, color="red", linestyle="--", linewidth=1, label="6 GB target")
    right.legend(fontsize=8)
    if cluster:
        left.text(0.02, 0.02, "x: on a 2-worker LocalCluster", transform=left.transAxes,
                  fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=None,
                        help="sizes to run (default: 1,000,000 and 10,000,000)")
    parser.add_argument("--cluster", action="store_true",
                        help="10 M rows on a 2-worker LocalCluster against one process")
    parser.add_argument("--cluster-rows", type=int, default=10_000_000)
    parser.add_argument("--single-model", "--cluster-single-model", action="store_true",
                        help="training.ensemble: false (a single model scores 50 M rows in "
                        "minutes, where a fold-bagged ensemble took over an hour)")
    parser.add_argument("--budget", type=int, default=60, help="seconds of model search")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="measure these stages only (the ones before them run unmeasured); "
                        "the other stages of a size already in the results are kept")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for scale.json/.md/.png (default: bench/results)")
    parser.add_argument("--work", type=Path, default=None,
                        help="where to generate data (deleted afterwards)")
    args = parser.parse_args()
    import signal

    global RESULTS, TABLE, PLOT
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
        RESULTS, TABLE, PLOT = (args.results / f"scale.{ext}" for ext in ("json", "md", "png"))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups on kill

    from loopml.core.config import ComputeConfig

    results: dict = {"sizes": {}}
    results.update({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "sample_rows": ComputeConfig().sample_rows,
        "target_rss_mb": TARGET_RSS_MB,
    })
    if args.rows is not None or not args.cluster:  # the sizes' budget (the cluster has its own)
        results["budget"] = args.budget
    work = Path(tempfile.mkdtemp(prefix="loopml-scale-", dir=args.work))
    try:
        if args.cluster:
            def partial_cluster(run: dict) -> None:
                results["cluster"] = run
                write_results(results)

            results["cluster"] = cluster_size(work, args.cluster_rows, budget=args.budget,
                                              ensemble=not args.single_model,
                                              done=partial_cluster)
            write_results(results)
        for rows in args.rows if args.rows is not None else (
                [] if args.cluster else [1_000_000, 10_000_000]):
            only = set(args.stages) != set(STAGES)

            def partial(run: dict, rows: int = rows) -> None:
                results["sizes"][str(rows)] = {**run, "only": only}
                write_results(results)

            run = one_size(work, rows, budget=args.budget, done=partial,
                           ensemble=not args.single_model, stages=tuple(args.stages))
            results["sizes"][str(rows)] = {**run, "only": only}
            write_results(results)
    finally:
        logs = Path(tempfile.gettempdir()) / "loopml-scale-logs"
        logs.mkdir(exist_ok=True)
        for log in work.glob("stages-*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {RESULTS}, {TABLE}, {PLOT}")


if __name__ == "__main__":
    main()
