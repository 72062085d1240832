"""What the server counts and how it shows it: request counts and latency by endpoint, rows
scored, the prediction log's state, the model version; ``GET /metrics`` in Prometheus' text
format (version 0.0.4), and one JSON log line per request with its request id.

``Observe`` is a plain ASGI middleware (no per-request objects beyond a closure): it times
every HTTP request, refuses a body whose declared length is over the limit before the app
reads it (413), gives every response an ``X-Request-ID`` (the app's own when it set one) and
writes the access line.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUBLISH_S = 0.5  # a worker shares its counters at most this often
ENDPOINTS = ("/predict", "/feedback", "/reload", "/health", "/ready", "/metrics", "/docs",
             "/openapi.json")
access_log = logging.getLogger("loopml.serve.access")


class ServerMetrics:
    """Counters and latency histograms by endpoint, safe to update from any thread.

    With ``share`` (a folder every worker of ``loopml serve --workers N`` is given), each
    worker writes its counters there (``<pid>.json``, at most every ``PUBLISH_S`` and at
    exit) and ``render`` adds the other workers' to its own, so whichever worker answers a
    scrape shows the server's totals (the others' as of their last write). ``counters``
    gives further counters of this worker, shown and shared alike (name -> (help,
    [(labels, value)]))."""

    def __init__(self, share: Path | None = None,
                 counters: Callable[[], dict[str, tuple[str, list[tuple[dict[str, str], float]]]]]
                 | None = None) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.rows_scored = 0
        self.timeouts = 0
        self._changes = 0  # updates so far, for the publisher to see there is news
        self._counters = counters or dict
        self._share = share
        self._own = None if share is None else share / f"{os.getpid()}.json"
        if share is not None:
            import atexit

            stop = threading.Event()
            threading.Thread(target=self._publishing, args=(stop,), daemon=True,
                             name="loopml-metrics").start()
            atexit.register(lambda: (stop.set(), self.publish()))

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (endpoint, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            counts = self.buckets.setdefault(endpoint, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[endpoint] = self.sums.get(endpoint, 0.0) + seconds
            self._changes += 1

    def scored(self, rows: int) -> None:
        with self._lock:
            self.rows_scored += rows
            self._changes += 1

    def timed_out(self) -> None:
        with self._lock:
            self.timeouts += 1
            self._changes += 1

    def snapshot(self) -> dict[str, Any]:
        """This worker's counters, as plain JSON."""
        with self._lock:
            out = {"requests": [[e, s, n] for (e, s), n in self.requests.items()],
                   "buckets": {e: list(c) for e, c in self.buckets.items()},
                   "sums": dict(self.sums), "rows_scored": self.rows_scored,
                   "timeouts": self.timeouts}
        out["counters"] = {name: [[labels, v] for labels, v in series]
                           for name, (_, series) in self._counters().items()}
        return out

    def publish(self) -> None:
        """Write this worker's counters to the shared folder (atomically)."""
        if self._own is None:
            return
        tmp = self._own.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.snapshot()))
            os.replace(tmp, self._own)
        except OSError as exc:  # the folder went away (the server is stopping)
            access_log.debug("metrics not shared: %s", exc)

    def _publishing(self, stop: threading.Event) -> None:
        last = None
        while not stop.wait(PUBLISH_S):
            now = (self._changes, json.dumps(self._counters(), sort_keys=True, default=str))
            if now != last:
                self.publish()
                last = now

    def _merged(self) -> dict[str, Any]:
        """This worker's counters plus the last ones the other workers shared."""
        mine = self.snapshot()
        if self._share is None:
            return mine
        requests = {(e, s): n for e, s, n in mine["requests"]}
        counters = {name: {json.dumps(labels, sort_keys=True): v for labels, v in series}
                    for name, series in mine["counters"].items()}
        for path in sorted(self._share.glob("*.json")):
            if path == self._own:
                continue
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):  # being replaced, or gone
                continue
            for e, s, n in other["requests"]:
                requests[(e, s)] = requests.get((e, s), 0) + n
            for e, counts in other["buckets"].items():
                mine["buckets"][e] = [a + b for a, b in zip(
                    mine["buckets"].get(e, [0] * len(counts)), counts, strict=True)]
            for e, total in other["sums"].items():
                mine["sums"][e] = mine["sums"].get(e, 0.0) + total
            mine["rows_scored"] += other["rows_scored"]
            mine["timeouts"] += other["timeouts"]
            for name, series in other["counters"].items():
                found = counters.setdefault(name, {})
                for labels, v in series:
                    key = json.dumps(labels, sort_keys=True)
                    found[key] = found.get(key, 0) + v
        mine["requests"] = [[e, s, n] for (e, s), n in requests.items()]
        mine["counters"] = {name: [[json.loads(k), v] for k, v in series.items()]
                            for name, series in counters.items()}
        return mine

    def render(self, gauges: dict[str, tuple[str, Any, dict[str, str]]]) -> str:
        """The exposition text: the counters and histograms (every worker's, when shared),
        then this worker's ``gauges`` (name -> (help, value, labels))."""
        got = self._merged()
        out: list[str] = []
        out += _head("loopml_requests_total", "counter", "HTTP requests by endpoint and status")
        for endpoint, status, n in sorted(got["requests"]):
            out.append(f'loopml_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
        out += _head("loopml_request_seconds", "histogram",
                     "Time from a request's arrival to its response's end")
        for endpoint, counts in sorted(got["buckets"].items()):
            running = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'loopml_request_seconds_bucket{{endpoint="{endpoint}",le="{le}"}} '
                           f"{running}")
            out.append(f'loopml_request_seconds_sum{{endpoint="{endpoint}"}} '
                       f"{got['sums'][endpoint]:.6f}")
            out.append(f'loopml_request_seconds_count{{endpoint="{endpoint}"}} {running}')
        out += _head("loopml_rows_scored_total", "counter", "Records scored and answered")
        out.append(f"loopml_rows_scored_total {got['rows_scored']}")
        out += _head("loopml_request_timeouts_total", "counter",
                     "Requests answered 503 because scoring overran serving.timeout_s")
        out.append(f"loopml_request_timeouts_total {got['timeouts']}")
        series = [(name, "counter", help_, got["counters"].get(name, []))
                  for name, (help_, _) in self._counters().items()]
        series += [(name, "gauge", help_, [(labels, value)])
                   for name, (help_, value, labels) in gauges.items()]
        for name, kind, help_, values in series:
            out += _head(name, kind, help_)
            for tagged, v in values:
                tags = ",".join(f'{k}="{_escape(str(x))}"' for k, x in tagged.items())
                out.append(f"{name}{{{tags}}} {v:g}" if tags else f"{name} {v:g}")
        return "\n".join(out) + "\n"


def _head(name: str, kind: str, help_: str) -> list[str]:
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Observe:
    """ASGI middleware: times each HTTP request into ``metrics``, refuses a declared body
    over ``max_body_bytes`` with 413, sets ``X-Request-ID`` and writes the access line."""

    def __init__(self, app: Any, metrics: ServerMetrics, *, max_body_bytes: int,
                 access: bool = True):
        self.app, self.metrics = app, metrics
        self.max_body_bytes, self.access = max_body_bytes, access

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else (
            "/lineage" if path.startswith("/lineage/") else "other")
        seen: dict[str, Any] = {"status": 500, "id": None}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = list(message.get("headers", []))
                found = next((v for k, v in headers if k == b"x-request-id"), None)
                if found is None:
                    found = uuid.uuid4().hex.encode()
                    headers.append((b"x-request-id", found))
                    message = {**message, "headers": headers}
                seen["id"] = found.decode("latin-1")
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await too_large(sending, self.max_body_bytes, length)
            else:
                await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(endpoint, seen["status"], seconds)
            if self.access and access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s", scope.get("method"), path, seen["status"], extra={
                    "request_id": seen["id"], "method": scope.get("method"), "path": path,
                    "status": seen["status"], "ms": round(seconds * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0]})


def _content_length(scope: dict[str, Any]) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large_body(limit: int, found: int | None = None) -> dict[str, str]:
    """The 413 answer's body: the request is over ``limit`` bytes (``found``, when known)."""
    size = "" if found is None else f" ({found:,} bytes)"
    return {"error": f"The request body{size} is over the server's limit of {limit:,} bytes.",
            "hint": "Send fewer records per request, or raise serving.max_body_mb."}


async def too_large(send: Callable[..., Any], limit: int, found: int | None) -> None:
    """A 413 answer sent straight to the client, before the app reads the body."""
    body = json.dumps(too_large_body(limit, found)).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request's fields
    (``request_id``, ``method``, ``path``, ``status``, ``ms``) when the record has them."""

    FIELDS = ("request_id", "method", "path", "status", "ms", "client", "version")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
