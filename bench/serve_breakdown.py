"""Where the time of one served record goes: scoring in process on the compiled form, part by
part, and one HTTP request, part by part (used by ``bench/serve.py``).

In process, each part of scoring one record is timed with ``perf_counter_ns`` around it, on
``--requests`` different rows, each scored ``REPEATS`` times: the record as a validated
request record to a frame of the contract's types, conforming it (``predict_frame`` does;
the server's frame already fits), each member's feature plan (named by its member, fold and
blocks; the plans of one model share the record's columns as Python values, so the first
plan pays for converting each column and the others find it done), each member's estimator, the bag means, the ensemble's weighted sum, the calibrator,
the labels and scores, and building the response. The model parts are timed by walking the
compiled model's nodes with their own methods; the walk's probabilities are checked against
``Scorer.score``, so the parts are the parts of what serves. Medians and p99 per part; a
part's share is its median over the sum of medians.

Over HTTP, the handler's parts are timed the same way in process (validating the JSON body
with the request model, the frame, scoring, the prediction log's rows and enqueue, the
unseen-category warnings and the JSON answer), and the whole request is measured against
``loopml serve`` with ``wrk -c1`` (one connection: no queueing) on ``/predict`` and on
``GET /health``; what the handler does not account for is the framework: uvicorn's HTTP
parsing, Starlette and FastAPI routing, reading the body, the hop to the thread pool and
back, and the loopback network.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPEATS = 20  # scorings of each row


class Parts:
    """Nanoseconds per named part, in the order parts were first seen."""

    def __init__(self) -> None:
        self.ns: dict[str, list[int]] = defaultdict(list)

    def add(self, name: str, began: int) -> int:
        now = time.perf_counter_ns()
        self.ns[name].append(now - began)
        return time.perf_counter_ns()

    def table(self) -> list[dict[str, Any]]:
        medians = {k: float(np.median(v)) / 1000 for k, v in self.ns.items()}
        total = sum(medians.values())
        return [{"part": k, "p50_us": round(medians[k], 1),
                 "p99_us": round(float(np.percentile(v, 99)) / 1000, 1),
                 "share": round(medians[k] / total, 3) if total else 0.0}
                for k, v in self.ns.items()]


def plan_name(plan: Any) -> str:
    """The blocks of a feature plan, e.g. ``lookup 2, numbers 8, dates 1``."""
    names = []
    for block in plan.blocks:
        kind = type(block).__name__.strip("_").lower()
        if kind == "numbers" and block.parts is not None:
            kind = "dates"
        names.append(f"{kind} {len(block.columns)}")
    return ", ".join(names)


def _estimator_name(estimator: Any) -> str:
    name = type(estimator).__name__.strip("_")
    if hasattr(estimator, "arrays"):  # a forest
        return f"{name} ({estimator.arrays.roots.size} trees)"
    if hasattr(estimator, "num_iteration"):  # LightGBM
        return f"{name} ({estimator.booster.num_trees()} trees)"
    return name


def timed_proba(node: Any, frame: Any, parts: Parts, label: str) -> np.ndarray:
    """``node.proba(frame)`` computed by the node's own parts, each timed into ``parts``."""
    from loopml.train._cv import align

    kind = type(node).__name__
    if kind == "_Ensemble":
        found = [(m, w, timed_proba(m, frame, parts, f"m{i} "))
                 for i, (m, w) in enumerate(node.members)]
        began = time.perf_counter_ns()
        proba = sum(w * align(p, m.classes, node.classes) for m, w, p in found)
        began = parts.add("ensemble: align and weigh the members", began)
        if node.calibrator is not None:
            proba = np.asarray(node.calibrator.transform(proba), dtype=np.float64)
            parts.add(f"calibrator ({node.calibrator.method})", began)
        return proba
    if kind == "_Bag":
        found = [(m, timed_proba(m, frame, parts, f"{label}fold {j} "))
                 for j, m in enumerate(node.models)]
        began = time.perf_counter_ns()
        proba = np.mean([align(p, m.classes, node.classes) for m, p in found], axis=0)
        parts.add(f"{label}bag mean", began)
        return proba
    if kind == "_Pipe":
        began = time.perf_counter_ns()
        X = node.plan.transform(frame)
        began = parts.add(f"{label}features [{plan_name(node.plan)}]", began)
        proba = node.estimator.predict_proba(X)
        parts.add(f"{label}{_estimator_name(node.estimator)}", began)
        return proba
    raise TypeError(f"unknown compiled node {kind}")


def in_process(bundle: Any, records: list[dict], *, repeats: int = REPEATS) -> dict[str, Any]:
    """The parts of scoring one record in process on the compiled form, and the whole of it
    (``Scorer.score`` on the request's frame, and ``predict_frame`` on a one-row frame)."""
    import polars as pl

    from loopml.serve import predict_frame
    from loopml.serve._request import RequestSchema
    from loopml.serve._scoring import Scorer, conform

    try:
        from loopml.train._fastpath import _shared
    except ImportError:  # a loopml from before plans shared columns: each reads the frame
        def _shared(frame: Any) -> Any:
            return frame

    scorer = Scorer(bundle)
    schema = RequestSchema(scorer.contract, max_records=10)
    model = bundle.model
    parts, whole, whole_frame = Parts(), [], []
    valid = [schema.request.model_validate({"records": [r]}).records for r in records]
    frames = [schema.frame(v) for v in valid]
    for r in range(repeats):
        for one in valid:
            began = time.perf_counter_ns()
            frame = schema.frame(one)
            began = parts.add("record -> frame (contract types)", began)
            frame = conform(frame, scorer.contract).select(scorer.columns)
            parts.add("conform to the contract", began)
            proba = timed_proba(model.root, _shared(frame), parts, "")
            began = time.perf_counter_ns()
            labels = model.decide(proba)
            scores = proba[:, scorer._positive] if scorer._positive is not None else None
            began = parts.add("labels and score (decide)", began)
            _answer(labels, proba, scores, scorer)
            parts.add("answer (labels, probabilities to Python)", began)
            if r == 0:
                expected = scorer.score(frame).probabilities
                if not np.array_equal(proba, expected):
                    raise AssertionError("the timed walk differs from Scorer.score")
        for frame in frames:  # the whole, no timers inside
            began = time.perf_counter_ns()
            scorer.score(frame)
            whole.append(time.perf_counter_ns() - began)
    raw = [pl.DataFrame(f.to_dicts()) for f in frames[: max(1, len(frames) // 4)]]
    for _ in range(repeats):
        for frame in raw:
            began = time.perf_counter_ns()
            predict_frame(bundle, frame)
            whole_frame.append(time.perf_counter_ns() - began)
    return {"parts": parts.table(), "score_one": _summary(whole),
            "predict_frame_one": _summary(whole_frame),
            "model": repr(model), "rows": len(records), "repeats": repeats}


def _answer(labels: np.ndarray, proba: np.ndarray, scores: Any, scorer: Any) -> dict:
    from loopml.core.bundle import to_native

    return {"predictions": [to_native(p) for p in labels.tolist()],
            "probabilities": proba.tolist(), "classes": scorer.classes}


def handler(bundle: Any, records: list[dict], *, repeats: int = REPEATS) -> dict[str, Any]:
    """The parts of ``/predict``'s handler for one record, in process, with the prediction
    log on (a lake in a temporary folder; rows are enqueued as the server does, written by
    the log's own thread)."""
    from loopml.lake import Lake
    from loopml.serve._log import PredictionLog
    from loopml.serve._served import Served

    served = Served.build(bundle, 1, max_records=10_000)
    bodies = [json.dumps({"records": [r]}).encode() for r in records]
    parts = Parts()
    with tempfile.TemporaryDirectory() as folder:
        log = PredictionLog(Lake(folder), "bench", batch_rows=1_000_000, flush_s=3600,
                            max_pending_rows=10_000_000)
        try:
            for _ in range(repeats):
                for raw in bodies:
                    began = time.perf_counter_ns()
                    body = served.schema.request.model_validate_json(raw)
                    began = parts.add("validate the JSON body (pydantic)", began)
                    features = served.schema.frame(body.records)
                    began = parts.add("records -> frame", began)
                    scored = served.scorer.score(features)
                    began = parts.add("score (compiled model)", began)
                    log.add(PredictionLog.rows(features, served.scorer.columns_for(scored),
                                               request_id="r", version=1))
                    began = parts.add("prediction log: rows and enqueue", began)
                    warnings = served.unseen(features) if served.categories else []
                    began = parts.add("unseen-category warnings", began)
                    payload = {"model": "m", "version": 1, "request_id": "r",
                               "predictions": [p for p in scored.predictions.tolist()],
                               "probabilities": None if scored.probabilities is None
                               else scored.probabilities.tolist(),
                               "classes": served.classes, "warnings": warnings}
                    json.dumps(payload, separators=(",", ":"), allow_nan=False,
                               default=str).encode()
                    parts.add("response JSON", began)
        finally:
            log.close()
    return {"parts": parts.table()}


def wrk_latency(url: str, path: str, body: bytes | None, seconds: int, work: Path) -> dict:
    """p50 and p99 of requests over one connection (wrk -t1 -c1) for ``seconds``."""
    script = work / "one.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"',
             f"wrk.body = {json.dumps(body.decode())}"] if body is not None else []
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t", "1", "-c", "1", "-d", f"{seconds}s", "--latency",
                          "-s", str(script), f"{url}{path}"],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, Any] = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("50%", "99%"):
            found[f"p{words[0][:-1]}_us"] = _us(words[1])
        if "requests in" in line:
            found["requests"] = int(words[0])
    return found


def _us(text: str) -> float:
    for unit, factor in (("us", 1.0), ("ms", 1000.0), ("s", 1e6)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 1)
    raise ValueError(text)


def http(url: str, handler_parts: dict, body: bytes, seconds: int, work: Path) -> dict:
    """One record over HTTP: the whole (wrk, one connection), ``GET /health`` (the
    framework with no body, no thread pool, no model), and the handler's parts with the
    rest named as the framework's."""
    predict = wrk_latency(url, "/predict", body, seconds, work)
    health = wrk_latency(url, "/health", None, max(2, seconds // 2), work)
    inside = sum(p["p50_us"] for p in handler_parts["parts"])
    framework = max(0.0, predict["p50_us"] - inside)
    rows = [{"part": "the rest: uvicorn, routing, middleware (metrics, request id, access log), body, thread pool, loopback, the log writer's thread",
             "p50_us": round(framework, 1)}, *handler_parts["parts"]]
    for row in rows:
        row["share"] = round(row["p50_us"] / predict["p50_us"], 3)
    return {"predict": predict, "health": health, "parts": rows}


def summary_table(title: str, rows: list[dict], total: dict | None = None) -> list[str]:
    out = [f"### {title}", "", "| part | p50 µs | p99 µs | share |", "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['part']} | {r['p50_us']} | {r.get('p99_us', '')} | "
                   f"{100 * r['share']:.1f}% |")
    if total is not None:
        out.append(f"| **whole, measured without timers** | **{total['p50_us']}** | "
                   f"**{total['p99_us']}** | |")
    return [*out, ""]


def _summary(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns) / 1000
    return {"p50_us": round(float(np.median(us)), 1),
            "p99_us": round(float(np.percentile(us, 99)), 1), "n": int(us.size)}


def build_demo(folder: Path) -> Path:
    """The demo's project trained as ``loopml demo`` trains it (its data, weather source,
    policy and time budget), without serving it or replaying the months."""
    from loopml.pipeline._demo import LEAKS, TARGET, _demo_policy, add_weather, write_flights
    from loopml.pipeline._project import Project

    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    train_file, _ = write_flights(data, train_rows=30_000)
    project = Project.init(train_file, target=TARGET, task="classification",
                           time_column="time_hour", exclude=LEAKS, directory=folder,
                           name="flights", force=True, training={"time_budget_s": 12})
    _demo_policy(project, month_rows=1500)
    add_weather(Project(project.file), data, say=lambda *_: None)
    with Project(project.file) as trained:
        trained.run()
    return folder


def breakdown(project: Path, records: list[dict], *, http_seconds: int | None,
              work: Path, start: Any = None, stop: Any = None) -> dict[str, Any]:
    """The in-process and (when ``http_seconds``) HTTP breakdowns for a project's champion
    in its serving form; ``start(project)`` gives a running ``loopml serve`` and its URL,
    ``stop(server)`` ends it."""
    from loopml.pipeline import Project
    from loopml.pipeline._context import serving_bundle

    with Project(project) as p:
        mv = p.catalog.model_version(p.model_name, "champion")
        bundle = serving_bundle(Path(p.catalog.fetch(mv.name, mv.version)))
    if bundle.serving_form != "compiled":
        return {"model": mv.ref, "error": f"served as {bundle.serving_form}"}
    out: dict[str, Any] = {"model": mv.ref, "in_process": in_process(bundle, records)}
    handled = handler(bundle, records)
    out["handler"] = handled
    if http_seconds:
        server, url = start(project)
        try:
            out["http"] = http(url, handled, json.dumps({"records": records[:1]}).encode(),
                               http_seconds, work)
        finally:
            stop(server)
    return out


def markdown(found: dict[str, Any]) -> list[str]:
    lines = ["## Where the time of one record goes", ""]
    for name, b in found.items():
        if "error" in b:
            lines += [f"{name} ({b['model']}): {b['error']}", ""]
            continue
        ip = b["in_process"]
        lines += [f"Model {name}: {b['model']}, {ip['model']}; {ip['rows']} rows x "
                  f"{ip['repeats']} scorings each.", ""]
        lines += summary_table(f"{name}: one record in process (compiled form)", ip["parts"],
                               ip["score_one"])
        lines += [f"`predict_frame` on a one-row frame (a Scorer made per call, conform, "
                  f"output columns): p50 {ip['predict_frame_one']['p50_us']} µs, p99 "
                  f"{ip['predict_frame_one']['p99_us']} µs.", ""]
        if "http" in b:
            h = b["http"]
            lines += summary_table(f"{name}: one record over HTTP (/predict, wrk -c1: p50 "
                                   f"{h['predict']['p50_us']} µs, p99 "
                                   f"{h['predict']['p99_us']} µs; GET /health p50 "
                                   f"{h['health']['p50_us']} µs)", h["parts"])
        else:
            lines += summary_table(f"{name}: /predict's handler in process",
                                   b["handler"]["parts"])
    return lines
