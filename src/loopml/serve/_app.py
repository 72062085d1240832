"""The REST service: ``POST /predict`` and ``GET /health`` over one model bundle.

This module deliberately has no ``from __future__ import annotations``: FastAPI reads the
endpoint's parameter annotation at runtime, and that annotation is the request model generated
inside ``create_app``.
"""

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ServeError
from loopml.serve._log import PredictionLog
from loopml.serve._request import RequestSchema, error_details
from loopml.core.bundle import to_native
from loopml.serve._scoring import Scorer

if TYPE_CHECKING:
    import fastapi

    from loopml.core.records import ModelBundle

logger = logging.getLogger("loopml.serve")

MAX_RECORDS = 10_000


def create_app(
    bundle: "ModelBundle",
    *,
    model_name: str,
    version: int,
    log: PredictionLog | None = None,
    max_records: int = MAX_RECORDS,
) -> "fastapi.FastAPI":
    """A FastAPI app that scores ``bundle`` and logs every prediction to ``log``.

    ``POST /predict`` takes ``{"records": [{feature: value, ...}, ...]}`` and answers with
    predictions (and class probabilities for classifiers); ``GET /health`` reports the model
    and the log. The request model is generated from the contract, so ``/docs`` shows every
    feature. The app's shutdown closes ``log``, writing every pending row.

    Example (``bundle`` from ``loopml.core.bundle.load_bundle``)::

        from fastapi.testclient import TestClient
        with TestClient(create_app(bundle, model_name="flights", version=3)) as client:
            client.post("/predict", json={"records": [{"distance": 1200.0, ...}]}).json()
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Response
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    scorer = Scorer(bundle)
    schema = RequestSchema(scorer.contract, max_records=max_records)
    request_model = schema.request
    classes = None if scorer.classes is None else list(scorer.classes)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await run_in_threadpool(_warm_up, scorer, schema)
        try:
            yield
        finally:
            if log is not None:
                await run_in_threadpool(log.close)

    app = FastAPI(
        title=f"loopml model {model_name}",
        version=str(version),
        description=_describe(bundle, model_name, version),
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: RequestValidationError) -> JSONResponse:
        details = error_details(list(exc.errors()), scorer.contract)
        return JSONResponse(
            status_code=422,
            content={
                "error": f"The request has {len(details)} problem(s); nothing was scored.",
                "detail": details,
            },
        )

    def predict(body: request_model) -> Response:  # type: ignore[valid-type]
        """Score the records; the answer keeps their order."""
        request_id = uuid.uuid4().hex
        features = schema.frame(body.records)  # type: ignore[attr-defined]
        try:
            scored = scorer.score(features)
        except Exception as exc:
            logger.exception("Scoring request %s failed", request_id)
            return JSONResponse(
                status_code=500,
                content={
                    "error": "The model could not score the records.",
                    "detail": f"{type(exc).__name__}: {exc}",
                    "request_id": request_id,
                },
                headers={"X-Request-ID": request_id},
            )
        if log is not None:
            log.add(PredictionLog.rows(features, scorer.columns_for(scored),
                                         request_id=request_id, version=version))
        payload = {
            "model": model_name,
            "version": version,
            "request_id": request_id,
            "predictions": [to_native(p) for p in scored.predictions.tolist()],
            "probabilities": None
            if scored.probabilities is None
            else scored.probabilities.tolist(),
            "classes": classes,
        }
        return Response(
            json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(),
            media_type="application/json",
            headers={"X-Request-ID": request_id},
        )

    app.post(
        "/predict",
        response_model=_response_model(),
        responses={
            422: {"model": _problem_model(), "description": "The records do not fit the contract"}
        },
        summary="Score records",
    )(predict)

    @app.get("/health", summary="Model and prediction-log status")
    async def health() -> dict[str, Any]:  # only reads counters: no need for the threadpool
        error = None if log is None else log.last_error
        return {
            "status": "ok" if error is None else "degraded",
            "model": model_name,
            "version": version,
            "task": scorer.task,
            "uptime_s": round(time.monotonic() - started, 3),
            "log_table": None if log is None else log.table,
            "rows_logged": 0 if log is None else log.written_rows,
            "rows_pending": 0 if log is None else log.pending_rows,
            "log_error": error,
        }

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


def _warm_up(scorer: Scorer, schema: RequestSchema) -> None:
    """Score the contract's example row once so the first request pays no one-off costs."""
    try:
        body = schema.request.model_validate({"records": [schema.example]})
        scorer.score(schema.frame(body.records))  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - a model may reject made-up values; requests will tell
        logger.warning("Warm-up prediction failed (%s: %s)", type(exc).__name__, exc)


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
