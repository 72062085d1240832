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
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import to_native
from loopml.core.errors import FeedbackError, LakeError, ServeError
from loopml.serve._feedback import take_feedback
from loopml.serve._log import PredictionLog
from loopml.serve._metrics import JsonFormatter, Observe, ServerMetrics, too_large_body
from loopml.serve._request import RecordProblems, error_details
from loopml.serve._served import Follower, Resolve, Served, ShadowScorer

if TYPE_CHECKING:
    import fastapi

    from loopml.core.records import FeedbackResult, ModelBundle
    from loopml.lake import Lake

logger = logging.getLogger("loopml.serve")

MAX_RECORDS = 10_000
MAX_LABELS = 100_000
MAX_BODY_BYTES = 10_000_000  # a request body over this is refused (413)
TIMEOUT_S = 10.0  # scoring that takes longer is answered 503 and its rows are not logged
KEEP_ALIVE_S = 65  # an idle connection is kept this long (uvicorn closes it after 5 s)


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
    rows scored and the log's state; ``GET /ready`` is 200 only while a model is loaded and the
    log can write.

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
    metrics = ServerMetrics()

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
        return _check_token(request, token)

    def score(raw: bytes, answer: "_Answer") -> Response:
        served = follower.current  # one model for validation, scoring and logging
        request_id = answer.request_id
        try:
            body = served.schema.request.model_validate_json(raw or b"null")
        except ValidationError as exc:
            return _problems(error_details(list(exc.errors()), served.scorer.contract))
        ids = None
        if id_column is not None:
            ids, problems = _ids(raw, id_column)
            if problems:
                return _problems(problems)
        try:
            features = served.schema.frame(body.records)  # type: ignore[attr-defined]
        except RecordProblems as exc:
            return _problems(exc.problems)
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
            return _timed_out(request_id, timeout_s)
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
        response_model=_response_model(),
        responses={
            401: {"description": "A token is configured and the request did not send it"},
            422: {"model": _problem_model(), "description": "The records do not fit the contract"},
        },
        summary="Score records",
    )
    async def predict(request: Request) -> Response:
        """Score the records; the answer keeps their order and names the version that scored
        them."""
        if protect_predict and (denied := refused(request)) is not None:
            return denied
        if (wrong := _not_json(request)) is not None:
            return wrong
        raw = await _body(request, max_body_bytes)
        if raw is None:
            return _too_large(max_body_bytes)
        answer = _Answer()
        work = asyncio.ensure_future(run_in_threadpool(score, raw, answer))
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout_s)
        except TimeoutError:
            if not answer.abandon():  # already logging: it answers in a moment
                return await work
            metrics.timed_out()
            logger.warning("Request %s: scoring took over %.3g s", answer.request_id, timeout_s,
                           extra={"request_id": answer.request_id})
            return _timed_out(answer.request_id, timeout_s)

    def feedback(raw: bytes) -> JSONResponse:
        import polars as pl

        served = follower.current
        try:
            labels = _labels(raw)
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
        if (wrong := _not_json(request)) is not None:
            return wrong
        raw = await _body(request, max_body_bytes)
        if raw is None:
            return _too_large(max_body_bytes)
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
            "loopml_model_swaps_total": ("New versions swapped in", follower.swaps, {}),
            "loopml_uptime_seconds": ("Seconds since start", time.monotonic() - started, {}),
        }
        if log is not None:
            gauges |= {
                "loopml_log_pending_rows": ("Predictions waiting to be written (queue depth)",
                                            log.pending_rows, {}),
                "loopml_log_written_rows_total": ("Predictions written to the lake",
                                                  log.written_rows, {}),
                "loopml_log_dead_lettered_rows_total": ("Predictions written to the "
                                                        "dead-letter table", log.dead_letter_rows,
                                                        {}),
                "loopml_log_dead_letter_file_rows_total": ("Predictions written to the "
                                                           "dead-letter file (lake unwritable)",
                                                           log.dead_letter_file_rows, {}),
                "loopml_log_dropped_rows_total": ("Predictions that could not be kept",
                                                  log.dropped_rows, {}),
                "loopml_log_writable": ("1 when the last log write succeeded",
                                        float(log.last_error is None), {}),
                "loopml_contract_violations_total": (
                    "Logged records that broke a rule of the contract (validated as they are "
                    "written)",
                    [({"column": c, "rule": r, "severity": sev}, n)
                     for (c, r, sev), n in sorted(log.contract_violations.items())], {}),
            }
        return Response(metrics.render(gauges),
                         media_type="text/plain; version=0.0.4; charset=utf-8")

    def openapi() -> dict[str, Any]:
        return _openapi(app, follower.current)

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Observe, metrics=metrics, max_body_bytes=max_body_bytes)
    return app


def run_server(
    app: "fastapi.FastAPI | str",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = True,
    log_level: str = "info",
    log_format: str = "json",
    workers: int = 1,
) -> None:
    """Serve ``app`` with uvicorn until SIGINT or SIGTERM.

    On either signal the server stops accepting connections, finishes the requests in flight
    and runs the app's shutdown, which writes every pending prediction to the lake.
    ``log_format="json"`` writes one JSON object per line to stderr (server messages and one
    access line per request with its request id, status and milliseconds); ``"text"`` keeps
    uvicorn's own lines. With ``workers`` above 1, ``app`` is the import path of a function
    that makes the app (``"package.module:function"``), called in each of ``workers``
    processes that share the port; a signal to this process stops them all the same way.

    Example::

        run_server(create_app(bundle, model_name="flights", version=3), host="0.0.0.0", port=8000)
    """
    import socket

    import uvicorn

    if workers > 1 and not isinstance(app, str):
        raise ServeError("Several workers need the app as an import path of its factory.",
                         hint="Pass app='package.module:function' with workers > 1.")
    json_lines = log_format == "json"
    configure_logs(log_format, log_level=log_level, access_log=access_log)
    config = uvicorn.Config(
        app, lifespan="on", log_level=log_level, access_log=access_log and not json_lines,
        workers=workers, factory=isinstance(app, str),
        log_config=None if json_lines else uvicorn.config.LOGGING_CONFIG,
        # longer than clients and load balancers keep an idle connection (httpx and requests
        # 5 s, AWS ALB 60 s): with uvicorn's 5 s, a client sending on a connection the server
        # is closing at that moment gets a reset
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say they are TCP,
    # and with Nagle on every response waits ~40 ms for a delayed ACK
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            hint="Stop the process using that port, or choose another with --port "
            "(serving.port in loopml.yaml).",
        ) from exc
    bound_host, bound_port = sock.getsockname()[:2]
    title = app if isinstance(app, str) else app.title
    logging.getLogger("uvicorn.error").info(
        "Serving %s on http://%s:%d%s (API docs at /docs; Ctrl+C or SIGTERM stops it and "
        "writes pending predictions)",
        title, bound_host, bound_port, f" with {workers} workers" if workers > 1 else "",
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock.set_inheritable(True)
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def configure_logs(log_format: str, *, log_level: str = "info", access_log: bool = True) -> None:
    """The server's logging in this process: with ``"json"``, one JSON object per line on
    stderr for uvicorn's and loopml's loggers, and loopml's access lines (unless
    ``access_log`` is off); with ``"text"``, uvicorn's own lines and access log."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        for name in ("uvicorn", "loopml"):
            found = logging.getLogger(name)
            found.handlers[:] = [handler]
            found.setLevel(log_level.upper())
            found.propagate = False
        logging.getLogger("loopml.serve.access").disabled = not access_log
    else:
        logging.getLogger("loopml.serve.access").disabled = True  # uvicorn's lines instead


def _describe(bundle: "ModelBundle", model_name: str, version: int) -> str:
    lines = [f"Predictions from **{model_name}** version {version} ({bundle.task})."]
    if bundle.target:
        lines.append(f"Target: `{bundle.target}`.")
    if bundle.classes:
        lines.append("Classes: " + ", ".join(f"`{to_native(c)}`" for c in bundle.classes) + ".")
    lines.append("Every feature is required in each record; send null when a value is unknown.")
    return " ".join(lines)


def _response_model() -> type:
    from pydantic import BaseModel, Field

    class PredictResponse(BaseModel):
        """Predictions in the order of the records sent."""

        model: str
        version: int
        request_id: str = Field(description="Also in the X-Request-ID header and the log.")
        predictions: list[Any] = Field(description="Class label, value or cluster id per record.")
        probabilities: list[list[float]] | None = Field(
            description="Classification: per record, one probability per class in `classes` order."
        )
        classes: list[Any] | None = Field(description="Classification: the class labels.")
        warnings: list[dict[str, Any]] = Field(
            default_factory=list,
            description="Values scored but never seen in training: record, field and value.",
        )
        ids: list[str | None] | None = Field(
            default=None, description="The id column's value per record, when configured."
        )

    return PredictResponse


def _problem_model() -> type:
    from pydantic import BaseModel

    class Problem(BaseModel):
        record: int | None
        field: str | None
        message: str
        expected: str | None = None

    class ValidationProblems(BaseModel):
        """Why a request was rejected: one item per record and field."""

        error: str
        detail: list[Problem]

    return ValidationProblems


# ---- helpers -----------------------------------------------------------------------------


class _Answer:
    """Who decides a /predict request's fate when scoring runs long: the scoring thread
    commits (then logs and answers) or the timeout abandons (then nothing is logged), never
    both."""

    def __init__(self) -> None:
        import threading

        self.request_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._state = "open"

    def commit(self) -> bool:
        with self._lock:
            if self._state == "open":
                self._state = "committed"
            return self._state == "committed"

    def abandon(self) -> bool:
        with self._lock:
            if self._state == "open":
                self._state = "abandoned"
            return self._state == "abandoned"


async def _body(request: Any, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (a chunked body has no
    length to check up front)."""
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _not_json(request: Any) -> Any:
    """A 415 answer unless the request says its body is JSON (or says nothing of it)."""
    from fastapi.responses import JSONResponse

    declared = request.headers.get("content-type")
    if declared is None:
        return None
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/")
                                        and media.endswith("+json")):
        return None
    return JSONResponse(status_code=415, content={
        "error": f"The body must be JSON; this request's Content-Type is {media!r}.",
        "hint": "Send the body as JSON with the header 'Content-Type: application/json'.",
    })


def _too_large(limit: int) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=413, content=too_large_body(limit))


def _timed_out(request_id: str, timeout_s: float) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=503, headers={"X-Request-ID": request_id, "Retry-After": "1"},
                        content={"error": f"Scoring took over {timeout_s:g} s; nothing was "
                                 "scored or logged for this request.",
                                 "hint": "Retry, send fewer records, or raise serving.timeout_s.",
                                 "request_id": request_id})


def _check_token(request: Any, token: str | None) -> Any:
    """None when no token is configured or the request sends it; else a JSON 401."""
    if token is None:
        return None
    from fastapi.responses import JSONResponse

    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        return None
    return JSONResponse(
        status_code=401,
        content={
            "error": "This endpoint needs the server's token."
            if not sent
            else "The token sent is not the server's token.",
            "hint": "Send the header 'Authorization: Bearer <token>' with the value of "
            "serving.token (LOOPML_SERVING__TOKEN).",
        },
        headers={"WWW-Authenticate": "Bearer"},
    )


def _problems(details: list[dict[str, Any]]) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=422,
        content={
            "error": f"The request has {len(details)} problem(s); nothing was scored.",
            "detail": details,
        },
    )


def _ids(raw: bytes, id_column: str) -> tuple[list[str | None], list[dict[str, Any]]]:
    """The id column's value of each record as text, and a problem per value that is not a
    scalar (the body was validated already)."""
    records = json.loads(raw)["records"]
    ids: list[str | None] = []
    problems = []
    for i, rec in enumerate(records):
        value = rec.get(id_column) if isinstance(rec, dict) else None
        if value is None:
            ids.append(None)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            ids.append(str(value))
        else:
            ids.append(None)
            problems.append({"record": i, "field": id_column,
                             "message": f"The id must be text or a number. Received {value!r}."})
    return ids, problems


def _labels(raw: bytes) -> list[dict[str, Any]]:
    """The ``labels`` list of a /feedback body, or FeedbackError saying what is wrong."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise FeedbackError(f"The body is not valid JSON ({exc}).") from None
    labels = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(labels, list) or not labels:
        raise FeedbackError(
            'The body needs a non-empty "labels" list.',
            hint='Send {"labels": [{"request_id": "...", "record": 0, "label": "yes"}]} or '
            '{"labels": [{"id": "...", "label": "yes"}]}.',
        )
    if len(labels) > MAX_LABELS:
        raise FeedbackError(f"Send at most {MAX_LABELS} labels in one request; got {len(labels)}.")
    bad = [i for i, item in enumerate(labels) if not isinstance(item, dict)]
    if bad:
        raise FeedbackError(f"Each label must be a JSON object; item {bad[0]} is not.")
    keep = ("request_id", "record", "id", "label")
    rows = []
    for item in labels:
        row = {k: item.get(k) for k in keep}
        row["label"] = None if row["label"] is None else _text_or_number(row["label"])
        record = row["record"]
        row["record"] = record if isinstance(record, int) and not isinstance(record, bool) else None
        row["request_id"] = None if row["request_id"] is None else str(row["request_id"])
        row["id"] = None if row["id"] is None else str(row["id"])
        rows.append(row)
    return rows


def _text_or_number(value: Any) -> Any:
    # labels of one batch may mix 1 and "yes"; one column needs one type, and text keeps all
    return value if isinstance(value, str) else json.dumps(value)


def _openapi(app: Any, served: Served) -> dict[str, Any]:
    """The OpenAPI document with /predict's body generated from the current model's contract."""
    from fastapi.openapi.utils import get_openapi

    cached = getattr(app.state, "openapi", None)
    if cached is not None and cached[0] is served:
        return cached[1]
    spec = get_openapi(title=app.title, version=str(served.version),
                       description=app.description, routes=app.routes)
    request = served.schema.request.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(request.pop("$defs", {}))
    components["PredictRequest"] = request
    spec["paths"]["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
    app.state.openapi = (served, spec)
    return spec
