"""The HTTP side of API sources: one client per read, its secrets resolved from the
environment and scrubbed from every text that leaves (provenance, errors, logs, cursors), with
retries, backoff and redirects that send the auth header only to the source's own origin."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from typing import TYPE_CHECKING, Any

from loopml.core.errors import SourceError, first_line

if TYPE_CHECKING:
    import httpx

    from loopml.core.config import HttpSource

log = logging.getLogger("loopml.sources.http")
_sleep = time.sleep  # tests replace it to count waits without waiting
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# query parameter names that carry secrets: never in provenance, errors or logs
_SECRET_PARAM = re.compile(
    r"(?i)(token|secret|passw|signature|credential|api[-_]?key|auth)"
    r"|(^|[-_.])(key|sig|pwd)($|[-_.])"
)
_MAX_REDIRECTS = 5


class HttpSession:
    """One httpx client with the source's secrets resolved, redacted wherever text leaves."""

    def __init__(self, config: HttpSource):
        self.config = config
        self.secrets: list[str] = []
        self.refs: dict[str, str] = {}  # secret value -> the ${VAR} it came from
        self.url = self._expand(config.url, "url")
        self.params = {
            k: (self._expand(v, f"params.{k}") if isinstance(v, str) else scalar(v))
            for k, v in config.params.items()
        }
        self.headers = {k: self._expand(v, f"headers.{k}") for k, v in config.headers.items()}
        self.private_headers: dict[str, str] = {}  # sent only to the origin of url
        for k, v in config.headers.items():
            if _ENV_REF.search(v):
                self.private_headers[k] = self.headers.pop(k)
        if config.auth_env:
            token = os.environ.get(config.auth_env)
            if not token:
                raise SourceError(
                    f"Source {config.name!r} takes its auth header from the environment "
                    f"variable {config.auth_env}, which is not set.",
                    hint=f"export {config.auth_env}='Bearer ...' before running loopml.",
                )
            self.secrets.append(token)
            self.private_headers[config.auth_header] = token
        self.client: httpx.Client | None = None
        self._filter = _Scrub(self)
        self._loggers: list[logging.Logger] = []

    def __enter__(self) -> HttpSession:
        import httpx

        try:
            parsed = httpx.URL(self.url)
        except httpx.InvalidURL as exc:
            raise SourceError(f"Source {self.config.name!r}: the url is not valid "
                              f"({self.scrub(first_line(exc))}).") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise SourceError(
                f"Source {self.config.name!r}: url {self.public(parsed)!r} is not an http(s) "
                "address.",
                hint="Write the full address, e.g. https://api.example.com/v1/items.",
            )
        # the url's own query joins params, so that each request (a next link too) carries it
        self.params = {**dict(parsed.params.items()), **self.params}
        self.url = str(parsed.copy_with(query=None))
        self.client = httpx.Client(
            timeout=self.config.timeout_s,
            follow_redirects=False,  # redirects are followed below, auth only to our origin
            headers={"Accept": "application/json", "User-Agent": "loopml", **self.headers},
        )
        # a logger's filters only see its own records: httpcore logs from child loggers
        self._loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                         if n.split(".")[0] in ("httpx", "httpcore")]
        for logger in self._loggers:
            logger.addFilter(self._filter)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self._loggers:
            logger.removeFilter(self._filter)
        if self.client is not None:
            self.client.close()

    def _expand(self, text: str, where: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            found = os.environ.get(name)
            if found is None:
                raise SourceError(
                    f"Source {self.config.name!r}: {where} names the environment variable "
                    f"{name}, which is not set.",
                    hint=f"export {name}=... before running loopml.",
                )
            if found:
                self.secrets.append(found)
                self.refs[found] = match.group(0)
            return found

        return _ENV_REF.sub(value, text)

    def expand(self, text: str) -> str:
        """A stored next link with its ``${VAR}`` references read from the environment."""
        return self._expand(text, "a next link")

    def scrub(self, text: str) -> str:
        from urllib.parse import quote, quote_plus

        for secret in sorted(set(self.secrets), key=len, reverse=True):
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(form, "***")
        return text

    def public(self, url: httpx.URL | str) -> str:
        """The URL without user, password or query parameters that carry a secret."""
        import httpx

        url = httpx.URL(str(url))
        params = [
            (k, v) for k, v in url.params.multi_items()
            if not _SECRET_PARAM.search(k) and not any(s and s in v for s in self.secrets)
        ]
        return self.scrub(str(url.copy_with(username=None, password=None, params=params)))

    def strip_config_params(self, url: str) -> str:
        """A next link without the configured parameters (re-added on each request), so that
        the cursor in the catalog holds no secret."""
        import httpx

        parsed = httpx.URL(url)
        params = [(k, v) for k, v in parsed.params.multi_items() if k not in self.params]
        text = str(parsed.copy_with(username=None, password=None, params=params))
        for secret, ref in sorted(self.refs.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(secret, ref)  # e.g. a key in the path: back to ${VAR}
        return text

    def _origin(self, url: httpx.URL) -> tuple[str, str, int | None]:
        return url.scheme, url.host, url.port

    def get_json(self, url: str, params: dict[str, Any]) -> tuple[httpx.Response, Any, str]:
        import httpx

        target = httpx.URL(url).copy_merge_params({k: scalar(v) for k, v in params.items()})
        response = self._get(target)
        where = self.public(response.url)
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "no content type")
            head = self.scrub(response.content[:80].decode("utf-8", "replace"))
            raise SourceError(
                f"{where} answered with {kind} that is not JSON: {head!r}.",
                hint="Check the url: it should return JSON (e.g. an /api/... endpoint).",
            ) from None
        return response, body, where

    def _get(self, url: httpx.URL) -> httpx.Response:
        import httpx

        assert self.client is not None
        config = self.config
        home = self._origin(httpx.URL(self.url))
        attempt = 0
        hops = 0
        while True:
            headers = self.private_headers if self._origin(url) == home else {}
            try:
                response = self.client.get(url, headers=headers)
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {first_line(exc)})"
                wait = min(_backoff(config.backoff_s, attempt), config.max_retry_wait_s)
            else:
                code = response.status_code
                if code in (301, 302, 303, 307, 308) and "location" in response.headers:
                    hops += 1
                    if hops > _MAX_REDIRECTS:
                        raise SourceError(f"{self.public(url)} redirects more than "
                                          f"{_MAX_REDIRECTS} times.")
                    url = url.join(response.headers["location"])
                    continue
                if code == 429 or code >= 500:
                    problem = f"HTTP {code} {response.reason_phrase}"
                    asked = _retry_after(response)
                    if asked > config.max_retry_wait_s:
                        raise SourceError(
                            f"{self.public(url)} asks to wait {asked:.0f} s before retrying "
                            f"({problem}), more than max_retry_wait_s="
                            f"{config.max_retry_wait_s:g}.",
                            hint="Run the ingest later, or raise max_retry_wait_s.",
                        )
                    wait = max(min(_backoff(config.backoff_s, attempt),
                                   config.max_retry_wait_s), asked)
                elif code >= 400:
                    raise self._refused(url, response)
                else:
                    return response
            if attempt >= config.retries:
                raise SourceError(
                    f"{self.public(url)} failed {attempt + 1} time(s); the last: "
                    f"{self.scrub(problem)}.",
                    hint="Check that the API is up and reachable; raise 'retries' or "
                    "'backoff_s' for a flaky API.",
                )
            attempt += 1
            log.info("%s: %s; retry %d of %d in %.2f s", self.public(url),
                     self.scrub(problem), attempt, config.retries, wait)
            _sleep(wait)

    def _refused(self, url: httpx.URL, response: httpx.Response) -> SourceError:
        code = response.status_code
        head = self.scrub(response.content[:120].decode("utf-8", "replace")).strip()
        hint = "Check the url and params."
        if code in (401, 403):
            hint = (f"Check the token in ${self.config.auth_env}." if self.config.auth_env
                    else "Set auth_env to an environment variable holding the auth header.")
            if self._origin(url) != self._origin(response.request.url):
                hint += " The auth header is only sent to the url's own host."
        return SourceError(
            f"{self.public(url)} answered HTTP {code} {response.reason_phrase}"
            + (f": {head!r}" if head else "."),
            hint=hint,
        )


class _Scrub(logging.Filter):
    """Removes the session's secrets from what httpx and httpcore log."""

    def __init__(self, session: HttpSession):
        super().__init__()
        self.session = session

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.session.scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def _backoff(base: float, attempt: int) -> float:
    """Exponential backoff with jitter: about base·2^attempt, spread so clients do not align."""
    return base * (2**attempt) * (0.5 + random.random())


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return 0.0
    if value.isdigit():
        return float(value)
    try:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
