"""The loop: one ``loopml loop`` cycle on the demo project, and the hot swap under load.

1. Cycle: on a copy of the demo project (by default built here with ``loopml.demo``), one
   ``loopml loop`` whose new-labels trigger fires (the labels that arrived after the last
   training), so the cycle checks the triggers, retrains, scores champion and challenger on
   the same evidence and decides. Its peer in the same run is ``loopml run`` on the same
   project and budget (one training from the clean table): the ratio shows what the loop adds
   around a training.
2. Hot swap: ``loopml serve`` following the champion alias, with client threads sending
   ``/predict`` without pause; the champion alias is moved to another version and back while
   they run. Every response must be 200 and its predictions must equal what the version it
   names gives in process (no failed or mis-scored request). Latency during the swaps is
   compared with latency before them.

Writes ``bench/results/loop.json``.

    .venv/bin/python bench/loop.py [--project DIR] [--clients 4] [--hold 4]
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
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

RESULTS = Path(__file__).parent / "results" / "loop.json"


def loopml(*args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run the loopml command; returns its wall time and output (fails loudly)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "loopml", *args], capture_output=True,
                         text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"loopml {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return seconds, out.stdout


def measure_cycle(project: Path) -> dict:
    from loopml.pipeline import Project

    env = {"LOOPML_LOOP__TRIGGERS": "[new_labels]", "LOOPML_LOOP__MIN_NEW_LABELS": "1"}
    with Project(project) as p:
        before = len(p.models())
    cycle_s, output = loopml("loop", "--project", str(project), env=env)
    with Project(project) as p:
        versions = p.models()
        decision = p.events(kind="decision", limit=1)[0]["payload"]
        retrain = p.catalog.runs(project=p.model_name, limit=1)[0]
        train_s = (retrain.finished_at - retrain.started_at).total_seconds()
        budget = p.config.training.time_budget_s
    if len(versions) != before + 1:
        raise SystemExit(f"The cycle did not retrain:\n{output}")
    run_s, _ = loopml("run", "--project", str(project))
    return {
        "loop_cycle_s": round(cycle_s, 2),
        "of_which_training_s": round(train_s, 2),
        "around_training_s": round(cycle_s - train_s, 2),
        "peer_loopml_run_s": round(run_s, 2),
        "ratio_cycle_to_run": round(cycle_s / run_s, 2),
        "time_budget_s": budget,
        "decision": {"promote": decision["promote"], "reason": decision["reason"],
                     "evidence": [{"name": e["name"], "rows": e["comparison"]["rows"],
                                   "difference": e["comparison"]["difference"],
                                   "low": e["comparison"]["low"],
                                   "high": e["comparison"]["high"]}
                                  for e in decision["evidence"]]},
    }


def measure_swap(project: Path, clients: int, hold: float) -> dict:
    import httpx

    from loopml.core.records import plain_json
    from loopml.pipeline import Project
    from loopml.pipeline._demo import Server, free_port  # the demo's own server process
    from loopml.serve import predict_frame

    with Project(project) as p:
        name = p.model_name
        champion = p.catalog.model_version(name, "champion").version
        other = max(v.version for v in p.models() if v.version != champion)
        bundles = {v: p.load(f"{name}@{v}")[1] for v in (champion, other)}
        logged = p.lake.read(f"predictions/{name}")  # rows in the contract's types
    columns = list(bundles[champion].feature_columns)
    typed = logged.sample(n=20, seed=5).select(columns)
    records = plain_json(typed.to_dicts())
    expected = {v: plain_json(predict_frame(b, typed)["_prediction"].to_list())
                for v, b in bundles.items()}

    os.environ["LOOPML_SERVING__FOLLOW_S"] = "0.5"  # read by the server process
    server = Server(project, free_port())
    url = server.url
    results: list[tuple[float, float, int, int | None, bool]] = []  # end, latency, status...
    lock, stop = threading.Lock(), threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = c.post("/predict", json={"records": records})
                    status = r.status_code
                    body = r.json() if status == 200 else {}
                except httpx.HTTPError:
                    status, body = -1, {}
                t1 = time.perf_counter()
                version = body.get("version")
                right = status == 200 and body.get("predictions") == expected.get(version)
                with lock:
                    results.append((t1, t1 - t0, status, version, right))

    with server:
        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(hold)
        swaps = []
        with Project(project) as p:
            for to in (other, champion):  # promote, then roll back
                at = time.perf_counter()
                p.catalog.set_alias(name, "champion", to)
                deadline = at + 30
                while time.perf_counter() < deadline:
                    with lock:
                        seen = [r for r in results if r[0] > at and r[3] == to]
                    if seen:
                        break
                    time.sleep(0.05)
                first_new = min((r[0] for r in seen), default=None)
                time.sleep(hold)
                swaps.append((to, at, first_new))
        stop.set()
        for t in threads:
            t.join(timeout=30)

    start = results[0][0] if results else 0.0
    errors = sum(1 for r in results if r[2] != 200)
    wrong = sum(1 for r in results if r[2] == 200 and not r[4])
    before = [r[1] for r in results if r[0] < swaps[0][1]]
    during: list[float] = []
    windows = []
    for to, at, first_new in swaps:
        end = (first_new or at) + 1.0  # from the alias change to 1 s after the new one answered
        part = [r for r in results if at <= r[0] <= end]
        during += [r[1] for r in part]
        windows.append({
            "to_version": to,
            "seconds_until_new_version": None if first_new is None else round(first_new - at, 3),
            "requests_during_swap": len(part),
            "errors_during_swap": sum(1 for r in part if r[2] != 200),
            "versions_answering": sorted({r[3] for r in part if r[3] is not None}),
        })
    return {
        "clients": clients,
        "records_per_request": len(records),
        "requests": len(results),
        "seconds": round(results[-1][0] - start, 2) if results else 0.0,
        "errors": errors,
        "mis_scored": wrong,
        "swaps": windows,
        "latency_before_ms": _lat(before),
        "latency_during_swaps_ms": _lat(during),
        "ratio_p99_during_to_before": round(
            _lat(during)["p99"] / _lat(before)["p99"], 2) if before and during else None,
        "follow_s": 0.5,
    }


def _lat(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": float("nan"), "p99": float("nan")}
    ms = np.asarray(values) * 1000
    return {"median": round(float(np.median(ms)), 2), "p99": round(float(np.percentile(ms, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path,
                        help="a demo project to copy (default: build one with loopml.demo)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--hold", type=float, default=4.0,
                        help="seconds before and after each swap")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopml-bench-loop-") as tmp:
        project = Path(tmp) / "demo"
        if args.project is not None:
            shutil.copytree(args.project, project)
        else:
            from loopml.pipeline import demo

            demo(project, say=lambda *_: None)
        cycle = measure_cycle(project)
        swap = measure_swap(project, args.clients, args.hold)

    result = {
        "benchmark": "loop",
        "cycle": cycle,
        "hot_swap": swap,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"loop cycle {cycle['loop_cycle_s']:.1f} s "
          f"(training {cycle['of_which_training_s']:.1f} s; "
          f"loopml run {cycle['peer_loopml_run_s']:.1f} s; ratio {cycle['ratio_cycle_to_run']})")
    print(f"hot swap: {swap['requests']} requests, {swap['errors']} errors, "
          f"{swap['mis_scored']} mis-scored; during swaps "
          f"{sum(w['requests_during_swap'] for w in swap['swaps'])} requests")
    if swap["errors"] or swap["mis_scored"]:
        raise SystemExit("requests failed or were mis-scored during the swap")


if __name__ == "__main__":
    main()
