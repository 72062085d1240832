"""The hot swap under load: a promotion while clients keep sending requests to ``loopml serve``.

Builds a project from generated data with two registered versions of one classifier (version 2
with one feature fewer, so the request model changes too), starts ``loopml serve`` for the
champion in its own process, keeps ``--clients`` threads sending requests, and promotes
version 2 halfway with ``Project.promote`` (the catalog alias only; the server notices by
itself). Counts requests and errors before, during and after the swap, checks that each
client's versions go old then new, and after SIGTERM that every logged row carries the version
its response named. Latency during the swap is reported as a ratio to latency before it, in
the same run. Writes ``bench/results/serve_swap.json``.

    .venv/bin/python bench/serve_swap.py [--seconds 10] [--clients 4]
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
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import _server  # noqa: E402  (bench/_server.py, beside this script)

RESULTS = Path(__file__).parent / "results" / "serve_swap.json"
FEATURES = ("x1", "x2", "x3", "group")


def build_project(folder: Path, rows: int = 2000) -> None:
    """A project on generated data with versions 1 (all features) and 2 (no x3)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from loopml.core.bundle import save_bundle
    from loopml.core.records import ModelBundle, Reference
    from loopml.pipeline import Project

    rng = np.random.default_rng(0)
    data = pl.DataFrame({
        "x1": rng.normal(size=rows), "x2": rng.normal(size=rows), "x3": rng.normal(size=rows),
        "group": rng.choice(["a", "b", "c"], rows),
    })  # fmt: skip
    data = data.with_columns(
        y=pl.when(pl.col("x1") + 0.5 * pl.col("x2") + rng.normal(size=rows) > 0)
        .then(pl.lit("yes")).otherwise(pl.lit("no"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    data.write_csv(folder / "data.csv")
    project = Project.init(folder / "data.csv", target="y", directory=folder, name="bench")
    contract = project.contract()
    with project:
        for version, columns in ((1, FEATURES), (2, ("x1", "x2", "group"))):
            numeric = [c for c in columns if c != "group"]
            model = Pipeline([
                ("features", ColumnTransformer([
                    ("num", SimpleImputer(), numeric),
                    ("cat", make_pipeline(SimpleImputer(missing_values=None, strategy="constant",
                                                        fill_value="?"),
                                          OneHotEncoder(handle_unknown="ignore")), ["group"]),
                ])),
                ("model", LogisticRegression()),
            ]).fit(data.select(columns), data["y"].to_numpy())  # fmt: skip
            bundle = ModelBundle(
                model=model, contract=contract.select(columns), task="classification",
                target="y", feature_columns=columns, classes=tuple(model.classes_),
                positive_label="yes", reference=Reference(features=()),
            )
            path = save_bundle(bundle, folder / f"bundle{version}")
            project.catalog.register_model("bench", path, run_id=None, task="classification",
                                           metric="roc_auc", score=0.8, metrics={})
        project.catalog.set_alias("bench", "champion", 1)


def start_server(project_dir: Path) -> tuple[subprocess.Popen, str]:
    """``loopml serve`` for the project's champion, on a free port."""
    return _server.start_server(project_dir, env={"LOOPML_SERVING__FOLLOW_S": "0.5"})


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"requests": 0}
    a = np.asarray(ms)
    return {"requests": len(ms), "median_ms": round(float(np.median(a)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3)}


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    records = [{"x1": float(a), "x2": float(b), "x3": float(c), "group": g}
               for a, b, c, g in zip(rng.normal(size=50), rng.normal(size=50),
                                     rng.normal(size=50), rng.choice(["a", "b", "c"], 50))]
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        folder = Path(tmp) / "project"
        build_project(folder)
        server, url = start_server(folder)
        answers: list[tuple[int, float, float, int, str]] = []  # client, sent, ms, version, id
        errors: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(i: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                n = 0
                while not stop.is_set():
                    body = {"records": [records[(i * 7 + n) % len(records)]]}
                    n += 1
                    sent = time.perf_counter()
                    try:
                        r = http.post("/predict", json=body)
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    ms = (time.perf_counter() - sent) * 1000
                    with lock:
                        if r.status_code != 200:
                            errors.append(f"{r.status_code}: {r.text[:200]}")
                        else:
                            answers.append((i, sent, ms, r.json()["version"],
                                            r.json()["request_id"]))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        try:
            for t in threads:
                t.start()
            time.sleep(args.seconds / 2)
            from loopml.pipeline import Project

            promoted_at = time.perf_counter()
            with Project(folder) as project:
                project.promote("bench", 2)
            time.sleep(args.seconds / 2)
            stop.set()
            for t in threads:
                t.join()
            health = httpx.get(f"{url}/health").json()
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=60)
        finally:
            stop.set()
            if server.poll() is None:
                server.kill()
        first_new = min((s for _, s, _, v, _ in answers if v == 2), default=None)
        monotonic = all(
            [v for c, _, _, v, _ in sorted(answers, key=lambda a: a[1]) if c == i]
            == sorted(v for c, _, _, v, _ in answers if c == i)
            for i in range(args.clients)
        )
        swap_end = (first_new or promoted_at) + 1.0
        before = [ms for _, s, ms, _, _ in answers if s < promoted_at]
        during = [ms for _, s, ms, _, _ in answers if promoted_at <= s < swap_end]
        after = [ms for _, s, ms, _, _ in answers if s >= swap_end]
        from loopml.lake import Lake

        logged = Lake(folder / ".loopml" / "lake").read("predictions/bench")
        by_request = dict(logged.group_by("_request_id").agg(pl.col("_model_version").first()).rows())
        log_matches = all(by_request.get(rid) == v for _, _, _, v, rid in answers)
        before_p = percentiles(before)
        during_p = percentiles(during)
        result = {
            "benchmark": "serve_swap",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "setup": f"loopml serve (uvicorn, 1 worker, prediction log on, serving.follow_s 0.5); "
                     f"{args.clients} keep-alive httpx clients for {args.seconds:g} s; "
                     "Project.promote halfway (v1 -> v2, v2 has one feature fewer)",
            "requests": len(answers) + len(errors),
            "errors": len(errors),
            "error_examples": errors[:5],
            "versions_monotonic_per_client": monotonic,
            "versions_seen": sorted({v for *_, v, _ in answers}),
            "seconds_from_promote_to_first_v2_answer":
                None if first_new is None else round(first_new - promoted_at, 3),
            "log_rows": logged.height,
            "log_versions_match_responses": log_matches and logged.height == len(answers),
            "before_swap": before_p,
            "during_swap": during_p,
            "after_swap": percentiles(after),
            "median_latency_during_over_before": round(during_p["median_ms"] / before_p["median_ms"], 3)
            if during and before else None,
            "health_swaps": health.get("swaps"),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["errors"] or not monotonic or not result["log_versions_match_responses"]:
        raise SystemExit("The swap failed requests or mixed versions.")


if __name__ == "__main__":
    main()
