"""Alerts: a log line, an "alert" event in the catalog, and a POST to ``loop.webhook``.

A webhook that fails is retried with a growing pause and then given up on; it never stops the
loop (the event in the catalog keeps the record either way).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.core.records import plain_json

if TYPE_CHECKING:
    from loopml.pipeline._context import Context

logger = logging.getLogger("loopml.loop")

BACKOFF_S = 0.5  # the first pause between webhook attempts; it doubles after each failure
TIMEOUT_S = 5.0


def alert(ctx: Context, event: str, subject: str, evidence: dict[str, Any]) -> bool:
    """Announce ``event`` ("drift", "decay", "promote", "rollback") about ``subject``; returns
    whether the webhook took it (True when none is configured)."""
    logger.warning("loopml %s: %s %s", event, subject, _summary(evidence))
    ctx.catalog.log_event("alert", subject, {"event": event, "evidence": evidence})
    url = ctx.config.loop.webhook
    if not url:
        return True
    body = {"event": event, "subject": subject, "model": ctx.model_name,
            "at": datetime.now(UTC).isoformat(), "evidence": evidence}
    return post_webhook(url, body, retries=ctx.config.loop.webhook_retries)


def post_webhook(url: str, body: dict[str, Any], *, retries: int, backoff_s: float | None = None
                 ) -> bool:
    """POST ``body`` as JSON to ``url``; on a failure or a non-2xx answer retry up to
    ``retries`` times, pausing ``backoff_s`` (doubling) in between. Never raises.

    >>> post_webhook("http://127.0.0.1:9/none", {"event": "x"}, retries=0)
    False
    """
    import httpx

    pause = BACKOFF_S if backoff_s is None else backoff_s
    content = json.dumps(plain_json(body))
    shown = without_secrets(url)
    for attempt in range(retries + 1):
        try:
            r = httpx.post(url, content=content, timeout=TIMEOUT_S,
                           headers={"content-type": "application/json"})
            if 200 <= r.status_code < 300:
                return True
            problem = f"answered {r.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        logger.warning("webhook %s %s (attempt %d of %d)", shown, problem, attempt + 1,
                       retries + 1)
        if attempt < retries:
            time.sleep(pause * 2**attempt)
    logger.error("webhook %s gave up after %d attempts; the event stays in the catalog",
                 shown, retries + 1)
    return False


def without_secrets(url: str) -> str:
    """The webhook's address as logged: no user, password or query (they may hold a token).

    >>> without_secrets("https://bot:s3cret@hooks.example.com/T0/B1?token=abc")
    'https://hooks.example.com/T0/B1'
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _summary(evidence: dict[str, Any]) -> str:
    for key in ("reason",):
        if key in evidence:
            return str(evidence[key])
    trigger = evidence.get("trigger")
    if isinstance(trigger, dict) and "reason" in trigger:
        return str(trigger["reason"])
    decision = evidence.get("decision")
    if isinstance(decision, dict) and "reason" in decision:
        return str(decision["reason"])
    return json.dumps(plain_json(evidence))[:300]
