"""The REST service: ``POST /predict``, ``POST /feedback``, ``POST /reload``, ``GET /health``
(liveness and status), ``GET /ready`` (model loaded, log writable) and ``GET /metrics``
(Prometheus).

The request model is generated per model version from its contract (``Served``), and
``/predict`` validates each body with the model that is current when the request arrives, so
a new version with another contract is followed without a restart. Write endpoints need the
bearer token when one is configured. Bodies, records per request and scoring time are
bounded: over a limit is a clear 413, 422 or 503, never a crash.
"""

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import to_native
from loopml.core.errors import FeedbackError, LakeError
from loopml.serve._feedback import take_feedback
from loopml.serve._http import (
    Answer,
    check_token,
    ids_of,
    labels_of,
    not_json,
    openapi_of,
    problem_model,
    problem_response,
    read_body,
    response_model,
    timed_out,
    too_large,
)
from loopml.serve._log import PredictionLog
from loopml.serve._metrics import Observe, ServerMetrics
from loopml.serve._request import RecordProblems, error_details
from loopml.serve._served import Follower, Resolve, Served, ShadowScorer

if TYPE_CHECKING:
    from pathlib import Path

    import fastapi

    from loopml.core.records import FeedbackResult, ModelBundle
    from loopml.lake import Lake

logger = logging.getLogger("loopml.serve")

MAX_RECORDS = 10_000
MAX_BODY_BYTES = 10_000_000  # a request body over this is refused (413)
TIMEOUT_S = 10.0  # scoring that takes longer is answered 503 and its rows are not logged


def create_app(
    bundle: "ModelBundle",
    *,
    model_name: str,
    version: int,
    log: PredictionLog | None = None,
    max_records: int = MAX_RECORDS,
    max_body_bytes: int = MAX_BODY_BYTES,
    timeout_s: float = TIMEOUT_S,
    resolve: Resolve | None = None,
    follow_s: float = 2.0,
    shadow: Resolve | None = None,
    token: str | None = None,
    protect_predict: bool = False,
    id_column: str | None = None,
    lake: "Lake | None" = None,
    on_feedback: "Callable[[FeedbackResult], None] | None" = None,
    lineage: "Callable[[str], dict[str, Any]] | None" = None,
    metrics_share: "Path | None" = None,
) -> "fastapi.FastAPI":
    """A FastAPI app that scores ``bundle`` and logs every prediction to ``log``.

    ``POST /predict`` takes ``{"records": [{feature: value, ...}, ...]}`` and answers with
    predictions (and class probabilities for classifiers), the version that scored them, and
    warnings for categories the model never saw. ``POST /feedback`` takes labels for logged
    predictions (into ``lake``, default ``log.lake``); ``on_feedback`` is told what became of
    each batch. ``GET /health`` reports the model, the log, the shadow model and the alias.

    ``resolve`` returns ``(version, bundle)`` for the alias served; it is checked every
    ``follow_s`` seconds and on ``POST /reload``, and a new version replaces the current one
    between requests. ``shadow`` does the same for a second model that scores every request
    off the response path, its rows logged with ``_shadow=True``. With ``token``, the write
    endpoints (and ``/predict`` when ``protect_predict``) need ``Authorization: Bearer
    <token>``. With ``id_column``, each record may carry that field, logged as ``_id`` and
    answered as ``ids``. The app's shutdown closes ``log``, writing every pending row.

    Limits: a body over ``max_body_bytes`` is a 413, more than ``max_records`` records a 422,
    scoring that takes over ``timeout_s`` seconds a 503 (those predictions are not logged:
    every logged prediction was answered). ``lineage(request_id)`` answers ``GET
    /lineage/{request_id}`` (behind the token). ``GET /metrics`` counts requests, errors, latency,
    rows scored and the log's state (with ``metrics_share``, a folder the workers of one server
    share, its counters are every worker's: see ``ServerMetrics``); ``GET /ready`` is 200 only
    while a model is loaded and the log can write.

    Example (``bundle`` from ``loopml.core.bundle.load_bundle``)::

        from fastapi.testclient import TestClient
        with TestClient(create_app(bundle, model_name="flights", version=3)) as client:
            client.post("/predict", json={"records": [{"distance": 1200.0, ...}]}).json()
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool

    first = Served.build(bundle, version, max_records=max_records)
    follower = Follower(first, resolve=resolve, shadow=shadow, follow_s=follow_s,
                        max_records=max_records)
    shadows = ShadowScorer(follower, log)
    feedback_lake = lake if lake is not None else (None if log is None else log.lake)
    started = time.monotonic()

    def counters() -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
        """This worker's counters besides the requests' (name -> help, series): shown as
        every worker's sum (see ``ServerMetrics``)."""
        out = {"loopml_model_swaps_total": ("New versions swapped in", [({}, follower.swaps)])}
        if log is not None:
            out |= {
                "loopml_log_written_rows_total": ("Predictions written to the lake",
                                                  [({}, log.written_rows)]),
                "loopml_log_dead_lettered_rows_total": (
                    "Predictions written to the dead-letter table", [({}, log.dead_letter_rows)]),
                "loopml_log_dead_letter_file_rows_total": (
                    "Predictions written to the dead-letter file (lake unwritable)",
                    [({}, log.dead_letter_file_rows)]),
                "loopml_log_dropped_rows_total": ("Predictions that could not be kept",
                                                  [({}, log.dropped_rows)]),
                "loopml_contract_violations_total": (
                    "Logged records that broke a rule of the contract (validated as they are "
                    "written)",
                    [({"column": c, "rule": r, "severity": sev}, n)
                     for (c, r, sev), n in sorted(log.contract_violations.items())]),
            }
        return out

    metrics = ServerMetrics(share=metrics_share, counters=counters)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if shadow is not None:
            await run_in_threadpool(follower.check)
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            await run_in_threadpool(shadows.close)
            if log is not None:
                await run_in_threadpool(log.close)

    app = FastAPI(
        title=f"loopml model {model_name}",
        version=str(version),
        description=_describe(bundle, model_name, version),
        lifespan=lifespan,
    )

    def refused(request: Request) -> JSONResponse | None:
        return check_token(request, token)

    def score(raw: bytes, answer: "Answer") -> Response:
        served = follower.current  # one model for validation, scoring and logging
        request_id = answer.request_id
        try:
            body = served.schema.request.model_validate_json(raw or b"null")
        except ValidationError as exc:
            return problem_response(error_details(list(exc.errors()), served.scorer.contract))
        ids = None
        if id_column is not None:
            ids, problems = ids_of(raw, id_column)
            if problems:
                return problem_response(problems)
        try:
            features = served.schema.frame(body.records)  # type: ignore[attr-defined]
        except RecordProblems as exc:
            return problem_response(exc.problems)
        try:
            scored = served.scorer.score(features)
        except Exception as exc:
            logger.exception("Scoring request %s failed", request_id)
            return JSONResponse(
                status_code=500,
                content={
                    "error": "The model could not score the records.",
                    "detail": f"{type(exc).__name__}: {exc}",
                    "request_id": request_id,
                    "version": served.version,
                },
                headers={"X-Request-ID": request_id},
            )
        if not answer.commit():  # the client was told it timed out: log nothing
            return timed_out(request_id, timeout_s)
        metrics.scored(len(scored.predictions))
        if log is not None:
            log.add(PredictionLog.rows(features, served.scorer.columns_for(scored),
                                       request_id=request_id, version=served.version, ids=ids))
        shadow_model = follower.shadow
        if shadow_model is not None and shadow_model.version != served.version:
            shadows.submit(features, ids, request_id)  # the same version would tell nothing
        payload: dict[str, Any] = {
            "model": model_name,
            "version": served.version,
            "request_id": request_id,
            "predictions": [to_native(p) for p in scored.predictions.tolist()],
            "probabilities": None
            if scored.probabilities is None
            else scored.probabilities.tolist(),
            "classes": served.classes,
            "warnings": served.unseen(features) if served.categories else [],
        }
        if ids is not None:
            payload["ids"] = ids
        return Response(
            json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str).encode(),
            media_type="application/json",
            headers={"X-Request-ID": request_id},
        )

    @app.post(
        "/predict",
        response_model=response_model(),
        responses={
            401: {"description": "A token is configured and the request did not send it"},
            422: {"model": problem_model(), "description": "The records do not fit the contract"},
        },
        summary="Score records",
    )
    async def predict(request: Request) -> Response:
        """Score the records; the answer keeps their order and names the version that scored
        them."""
        if protect_predict and (denied := refused(request)) is not None:
            return denied
        if (wrong := not_json(request)) is not None:
            return wrong
        raw = await read_body(request, max_body_bytes)
        if raw is None:
            return too_large(max_body_bytes)
        answer = Answer()
        work = asyncio.ensure_future(run_in_threadpool(score, raw, answer))
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout_s)
        except TimeoutError:
            if not answer.abandon():  # already logging: it answers in a moment
                return await work
            metrics.timed_out()
            logger.warning("Request %s: scoring took over %.3g s", answer.request_id, timeout_s,
                           extra={"request_id": answer.request_id})
            return timed_out(answer.request_id, timeout_s)

    def feedback(raw: bytes) -> JSONResponse:
        import polars as pl

        served = follower.current
        try:
            labels = labels_of(raw)
            if feedback_lake is None:
                raise FeedbackError("This server has no lake to keep labels in.",
                                    hint="Serve with a prediction log ('loopml serve').")
            if log is not None:
                try:
                    log.flush()  # labels for predictions still pending must find them
                except LakeError:
                    pass
            frame = pl.DataFrame(labels, infer_schema_length=None)
            result = take_feedback(
                feedback_lake, model_name, frame, task=served.scorer.task,
                classes=served.classes, id_column=id_column,
            )
        except FeedbackError as exc:
            return JSONResponse(status_code=422, content={"error": exc.message, "hint": exc.hint})
        except LakeError as exc:
            return JSONResponse(status_code=503, content={"error": exc.message, "hint": exc.hint})
        if on_feedback is not None:
            try:
                on_feedback(result)
            except Exception:  # noqa: BLE001 - the labels are stored; the note is secondary
                logger.exception("Recording the feedback event failed")
        return JSONResponse({"accepted": result.accepted, "unknown": result.unknown,
                             "invalid": result.invalid, "problems": list(result.problems)})

    @app.post("/feedback", summary="Send ground truth for logged predictions")
    async def post_feedback(request: Request) -> Response:
        """Take ``{"labels": [{"request_id": ..., "record": 0, "label": ...}, ...]}`` or labels
        by ``id``; answers ``{"accepted", "unknown", "invalid", "problems"}``."""
        if (denied := refused(request)) is not None:
            return denied
        if (wrong := not_json(request)) is not None:
            return wrong
        raw = await read_body(request, max_body_bytes)
        if raw is None:
            return too_large(max_body_bytes)
        return await run_in_threadpool(feedback, raw)

    @app.post("/reload", summary="Check the model alias now and load a new version")
    async def reload(request: Request) -> Response:
        """Ask the registry which version the alias names; load and swap it in if new."""
        if (denied := refused(request)) is not None:
            return denied
        changed = await run_in_threadpool(follower.check)
        if follower.last_error is not None:
            return JSONResponse(status_code=503, content={
                "error": "The alias could not be followed.", "detail": follower.last_error,
                "version": follower.current.version})  # fmt: skip
        shadow_model = follower.shadow
        return JSONResponse({
            "version": follower.current.version, "changed": changed,
            "shadow_version": None if shadow_model is None else shadow_model.version,
        })  # fmt: skip

    @app.get("/health", summary="Model and prediction-log status")
    async def health() -> dict[str, Any]:  # only reads counters: no need for the threadpool
        error = None if log is None else log.last_error
        served = follower.current
        degraded = error is not None or follower.last_error is not None
        return {
            "status": "degraded" if degraded else "ok",
            "pid": os.getpid(),
            "model": model_name,
            "version": served.version,
            "task": served.scorer.task,
            "serving_form": served.form,
            "serving_reason": served.reason,
            "uptime_s": round(time.monotonic() - started, 3),
            "log_table": None if log is None else log.table,
            "rows_logged": 0 if log is None else log.written_rows,
            "rows_pending": 0 if log is None else log.pending_rows,
            "rows_dead_lettered": 0 if log is None else log.dead_letter_rows,
            "rows_dead_lettered_to_file": 0 if log is None else log.dead_letter_file_rows,
            "dead_letter_file": None if log is None else (
                None if log.dead_letter_file is None else str(log.dead_letter_file)),
            "rows_dropped": 0 if log is None else log.dropped_rows,
            "log_error": error,
            "follow_error": follower.last_error,
            "swaps": follower.swaps,
            "shadow": None if shadow is None else shadows.stats(),
        }

    def trace(request_id: str) -> JSONResponse:
        from loopml.core.errors import LoopmlError
        from loopml.core.records import plain_json

        if lineage is None:
            return JSONResponse(status_code=404, content={
                "error": "This server keeps no lineage.",
                "hint": "Serve a project's model with 'loopml serve'."})
        if log is not None:
            try:
                log.flush()  # a prediction still pending must be found
            except LakeError:
                pass
        try:
            found = lineage(request_id)
        except LoopmlError as exc:
            return JSONResponse(status_code=404, content={"error": exc.message,
                                                          "hint": exc.hint})
        return JSONResponse(plain_json(found))

    @app.get("/lineage/{request_id}", summary="Where a prediction came from")
    async def get_lineage(request_id: str, request: Request) -> Response:
        """The request's logged rows, the model version that scored them, the run that
        trained it, its lake versions and contract, and the ingests behind them."""
        if (denied := refused(request)) is not None:
            return denied
        return await run_in_threadpool(trace, request_id)

    @app.get("/ready", summary="Ready to serve: model loaded and prediction log writable")
    async def ready() -> Response:
        """200 while the server can answer and log; 503 with the reasons when it cannot."""
        reasons = []
        if log is not None and log.last_error is not None:
            reasons.append(f"The prediction log cannot write: {log.last_error}")
        status = 200 if not reasons else 503
        return JSONResponse(status_code=status, content={
            "ready": not reasons, "model": model_name, "version": follower.current.version,
            "reasons": reasons})

    @app.get("/metrics", summary="Prometheus metrics")
    async def get_metrics() -> Response:
        """Requests and errors by endpoint and status, latency histograms, rows scored, the
        prediction log's queue and the model version, in Prometheus' text format."""
        served = follower.current
        gauges: dict[str, tuple[str, float, dict[str, str]]] = {
            "loopml_model_version": ("The model version serving", served.version,
                                     {"model": model_name}),
            "loopml_uptime_seconds": ("Seconds since start", time.monotonic() - started, {}),
        }
        if log is not None:
            gauges |= {
                "loopml_log_pending_rows": ("Predictions waiting to be written (queue depth)",
                                            log.pending_rows, {}),
                "loopml_log_writable": ("1 when the last log write succeeded",
                                        float(log.last_error is None), {}),
            }
        return Response(metrics.render(gauges),
                         media_type="text/plain; version=0.0.4; charset=utf-8")

    def openapi() -> dict[str, Any]:
        return openapi_of(app, follower.current)

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Observe, metrics=metrics, max_body_bytes=max_body_bytes)
    return app


def _describe(bundle: "ModelBundle", model_name: str, version: int) -> str:
    lines = [f"Predictions from **{model_name}** version {version} ({bundle.task})."]
    if bundle.target:
        lines.append(f"Target: `{bundle.target}`.")
    if bundle.classes:
        lines.append("Classes: " + ", ".join(f"`{to_native(c)}`" for c in bundle.classes) + ".")
    lines.append("Every feature is required in each record; send null when a value is unknown.")
    return " ".join(lines)

