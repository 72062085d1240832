"""The REST service: ``POST /predict``, ``POST /feedback``, ``POST /reload`` and ``GET /health``.

The request model is generated per model version from its contract (``Served``), and
``/predict`` validates each body with the model that is current when the request arrives, so
a new version with another contract is followed without a restart. Write endpoints need the
bearer token when one is configured.
"""

import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import to_native
from loopml.core.errors import FeedbackError, LakeError, ServeError
from loopml.serve._feedback import take_feedback
from loopml.serve._log import PredictionLog
from loopml.serve._request import error_details
from loopml.serve._served import Follower, Resolve, Served, ShadowScorer

if TYPE_CHECKING:
    import fastapi

    from loopml.core.records import FeedbackResult, ModelBundle
    from loopml.lake import Lake

logger = logging.getLogger("loopml.serve")

MAX_RECORDS = 10_000
MAX_LABELS = 100_000


def create_app(
    bundle: "ModelBundle",
    *,
    model_name: str,
    version: int,
    log: PredictionLog | None = None,
    max_records: int = MAX_RECORDS,
    resolve: Resolve | None = None,
    follow_s: float = 2.0,
    shadow: Resolve | None = None,
    token: str | None = None,
    protect_predict: bool = False,
    id_column: str | None = None,
    lake: "Lake | None" = None,
    on_feedback: "Callable[[FeedbackResult], None] | None" = None,
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

    def score(raw: bytes) -> Response:
        served = follower.current  # one model for validation, scoring and logging
        request_id = uuid.uuid4().hex
        try:
            body = served.schema.request.model_validate_json(raw or b"null")
        except ValidationError as exc:
            return _problems(error_details(list(exc.errors()), served.scorer.contract))
        ids = None
        if id_column is not None:
            ids, problems = _ids(raw, id_column)
            if problems:
                return _problems(problems)
        features = served.schema.frame(body.records)  # type: ignore[attr-defined]
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
        raw = await request.body()
        return await run_in_threadpool(score, raw)

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
        raw = await request.body()
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
            "model": model_name,
            "version": served.version,
            "task": served.scorer.task,
            "uptime_s": round(time.monotonic() - started, 3),
            "log_table": None if log is None else log.table,
            "rows_logged": 0 if log is None else log.written_rows,
            "rows_pending": 0 if log is None else log.pending_rows,
            "rows_dead_lettered": 0 if log is None else log.dead_letter_rows,
            "rows_dropped": 0 if log is None else log.dropped_rows,
            "log_error": error,
            "follow_error": follower.last_error,
            "swaps": follower.swaps,
            "shadow": None if shadow is None else shadows.stats(),
        }

    def openapi() -> dict[str, Any]:
        return _openapi(app, follower.current)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def run_server(
    app: "fastapi.FastAPI",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = True,
    log_level: str = "info",
) -> None:
    """Serve ``app`` with uvicorn (one worker) until SIGINT or SIGTERM.

    On either signal the server stops accepting connections, finishes the requests in flight
    and runs the app's shutdown, which writes every pending prediction to the lake.

    Example::

        run_server(create_app(bundle, model_name="flights", version=3), host="0.0.0.0", port=8000)
    """
    import socket

    import uvicorn

    config = uvicorn.Config(
        app, lifespan="on", log_level=log_level, access_log=access_log, workers=1
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
    logging.getLogger("uvicorn.error").info(
        "Serving %s on http://%s:%d (API docs at /docs; Ctrl+C or SIGTERM stops it and "
        "writes pending predictions)",
        app.title,
        bound_host,
        bound_port,
    )
    uvicorn.Server(config).run(sockets=[sock])


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
