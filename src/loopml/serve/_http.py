"""The HTTP side of the REST service: the response and problem models, reading and refusing
bodies (size, content type, JSON), the bearer token check, the ids and labels of a body, and
the OpenAPI document of the current model's request."""

import hmac
import json
import uuid
from typing import Any

from loopml.core.errors import FeedbackError
from loopml.serve._metrics import too_large_body
from loopml.serve._served import Served

MAX_LABELS = 100_000


def response_model() -> type:
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


def problem_model() -> type:
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


class Answer:
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


async def read_body(request: Any, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (a chunked body has no
    length to check up front)."""
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def not_json(request: Any) -> Any:
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


def too_large(limit: int) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=413, content=too_large_body(limit))


def timed_out(request_id: str, timeout_s: float) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=503, headers={"X-Request-ID": request_id, "Retry-After": "1"},
                        content={"error": f"Scoring took over {timeout_s:g} s; nothing was "
                                 "scored or logged for this request.",
                                 "hint": "Retry, send fewer records, or raise serving.timeout_s.",
                                 "request_id": request_id})


def check_token(request: Any, token: str | None) -> Any:
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


def problem_response(details: list[dict[str, Any]]) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=422,
        content={
            "error": f"The request has {len(details)} problem(s); nothing was scored.",
            "detail": details,
        },
    )


def ids_of(raw: bytes, id_column: str) -> tuple[list[str | None], list[dict[str, Any]]]:
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


def labels_of(raw: bytes) -> list[dict[str, Any]]:
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


def openapi_of(app: Any, served: Served) -> dict[str, Any]:
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
