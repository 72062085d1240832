"""HTTP JSON API sources: page by page, with retries, an auth header from the environment and
a cursor that survives a crash.

Pagination (``pagination:``): ``none`` (one request); ``page`` (``page_param`` counts up from
``start_page``); ``offset`` (``offset_param`` counts records, ``size_param`` sends
``page_size``); both stop on an empty page, or on a short one when ``size_param`` is set;
``cursor`` (the body's ``next_cursor`` path is sent back as ``cursor_param`` until it is null or
missing); ``link`` (RFC 8288 ``Link: <...>; rel="next"`` headers). ``records`` is the dotted
path to the list of records in each body (the body itself when None); a ``null`` there is an
empty page. Nested objects become ``a.b`` columns (``loopml.sources._records``).

Incremental or not:

- With ``watermark`` (a record field), an ingest keeps only records newer than the last
  ingest's largest value; records *at* that value are told apart by hashes kept in the cursor,
  as for SQL, so none is lost or doubled. ``since_param`` also sends that value to the API so it
  can filter. The cursor is ``{"watermark": v, "at_watermark": [hash, ...]}``.
- Without a watermark the API is read whole on every ingest, and rows seen by an earlier
  ingest are caught by the ingest's duplicate detection against earlier ingests (they are
  counted as duplicates, none reaches the clean table twice). The cursor only says the run
  completed (``{"complete": true}``). Give an API that can filter or sort by time a
  ``watermark``: each ingest then reads only what is new.

Either way, while a run is under way each chunk's cursor also holds ``"resume"``: where the next
request starts (page number, offset, cursor token or next link). An ingest that crashed, or that
stopped at ``max_pages``, goes on from the last committed page instead of starting over; the
watermark only moves once the whole run is in, so an API that does not sort by the watermark
loses nothing to a crash.

Secrets: the auth header's value comes from the environment variable ``auth_env``, and
``${VAR}`` in ``url``, ``params`` or ``headers`` is read from the environment too. None of them
is logged, put in provenance (``_source_file`` is the URL without credentials and without
query parameters that carry a secret), in an error, or in the cursor; the auth header is only
sent to the origin of ``url``. Retries: 429 (honouring ``Retry-After``), 5xx and connection
errors are retried ``retries`` times with exponential backoff and jitter, then a SourceError.

In ``loopml.yaml``::

    sources:
      - name: orders
        kind: http
        url: https://api.example.com/v1/orders
        records: data.items
        pagination: cursor
        next_cursor: meta.next
        cursor_param: after
        auth_env: ORDERS_API_TOKEN     # its value is the whole header, e.g. "Bearer ..."
        watermark: updated_at
        since_param: updated_since
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loopml.core.errors import SourceError, first_line
from loopml.core.records import Chunk
from loopml.sources._http_client import HttpSession

if TYPE_CHECKING:
    from loopml.core.config import HttpSource

log = logging.getLogger("loopml.sources.http")


def http_chunks(
    config: HttpSource, *, cursor: dict[str, Any] | None = None
) -> Iterator[Chunk]:
    """The records of ``config`` after ``cursor``, one chunk per ``pages_per_chunk`` pages."""
    with HttpSession(config) as session:
        yield from _chunks(config, session, dict(cursor or {}))


# ---- the run: pages → filtered records → chunks with cursors --------------------------------


@dataclass
class _Page:
    records: list[Any]
    where: str  # the public URL: provenance and error messages
    next: dict[str, Any] | None  # the next request's state; None: this was the last page


@dataclass
class _Watermark:
    floor: Any = None  # the last completed run's largest value (None: the first run)
    floor_hashes: set[str] = field(default_factory=set)
    high: Any = None  # the largest value read so far in this run
    high_hashes: set[str] = field(default_factory=set)


def _chunks(config: HttpSource, session: HttpSession, cursor: dict[str, Any]) -> Iterator[Chunk]:
    incremental = config.watermark is not None
    mark = _Watermark()
    if incremental and "watermark" in cursor:
        mark.floor = cursor["watermark"]
        mark.floor_hashes = set(cursor.get("at_watermark", ()))
    resume = cursor.get("resume")
    fresh = _first_state(config)
    if (isinstance(resume, dict) and isinstance(resume.get("next"), dict)
            and set(resume["next"]) == set(fresh)):  # (a changed pagination starts over)
        state = dict(resume["next"])
        mark.high = resume.get("high", mark.floor)
        mark.high_hashes = set(resume.get("high_hashes", mark.floor_hashes))
    else:
        state = fresh
        mark.high, mark.high_hashes = mark.floor, set(mark.floor_hashes)

    group: list[_Page] = []
    kept: list[tuple[str, int, dict[str, Any]]] = []
    rejected: list[tuple[str, int, str, str]] = []
    ready: Chunk | None = None
    pages = 0
    for page in _pages(config, session, state, since=mark.floor if incremental else None):
        pages += 1
        last = page.next is None
        if ready is not None:
            if last and not page.records:  # an empty last page: fold it into the one waiting
                ready = replace(ready, cursor=_cursor(config, mark, None))
                break
            if ready.frame.height or ready.rejected is not None:
                yield ready  # (an empty one is skipped: the next chunk carries its cursor)
            ready = None
        group.append(page)
        for row, record in enumerate(page.records, start=1):
            why = _check(config, record, mark) if incremental else _shape(record)
            if why == "old":
                continue
            if why:
                rejected.append((page.where, row, _dump(record), why))
            else:
                kept.append((page.where, row, record))
        stop = not last and pages >= config.max_pages
        if last or stop or len(group) >= config.pages_per_chunk:
            if stop:
                log.warning(
                    "Source %r: read max_pages=%d pages; the next ingest goes on from there.",
                    config.name, config.max_pages,
                )
            ready = _chunk(config, kept, rejected, _cursor(config, mark, page.next))
            group, kept, rejected = [], [], []
            if stop:
                break
    if ready is not None and (ready.frame.height or ready.rejected is not None
                              or ready.cursor != cursor):
        yield ready


def _check(config: HttpSource, record: Any, mark: _Watermark) -> str | None:
    """None to keep the record, "old" to skip it, else why it goes to quarantine."""
    why = _shape(record)
    if why:
        return why
    found, value = _dig(record, config.watermark or "")
    if not found or value is None or isinstance(value, (dict, list, bool)):
        return f"watermark field {config.watermark!r} is missing or not a number or text"
    digest = _hash(record)
    if mark.floor is not None:
        order = _compare(value, mark.floor)
        if order is None:
            return (f"watermark {value!r} cannot be compared with the last ingest's "
                    f"{mark.floor!r}")
        if order < 0 or (order == 0 and digest in mark.floor_hashes):
            return "old"
    order = 1 if mark.high is None else _compare(value, mark.high)
    if order is None:
        return f"watermark {value!r} cannot be compared with {mark.high!r}"
    if order > 0:
        mark.high, mark.high_hashes = value, {digest}
    elif order == 0:
        mark.high_hashes.add(digest)
    return None


def _shape(record: Any) -> str | None:
    if isinstance(record, dict):
        return None
    return f"a record must be a JSON object; found {type(record).__name__}"


def _cursor(config: HttpSource, mark: _Watermark, nxt: dict[str, Any] | None) -> dict[str, Any]:
    """The cursor once the pages so far are committed; ``nxt`` None: the run is complete."""
    if config.watermark is None:
        return {"complete": True} if nxt is None else {"resume": {"next": nxt}}
    if nxt is None:
        if mark.high is None:
            return {}
        return {"watermark": mark.high, "at_watermark": sorted(mark.high_hashes)}
    out: dict[str, Any] = {}
    if mark.floor is not None:
        out = {"watermark": mark.floor, "at_watermark": sorted(mark.floor_hashes)}
    out["resume"] = {"next": nxt, "high": mark.high, "high_hashes": sorted(mark.high_hashes)}
    return out


def _chunk(
    config: HttpSource,
    kept: list[tuple[str, int, dict[str, Any]]],
    rejected: list[tuple[str, int, str, str]],
    cursor: dict[str, Any],
) -> Chunk:
    import polars as pl

    from loopml.sources._records import records_frame

    provenance = [
        pl.Series("_source_file", [w for w, _, _ in kept], dtype=pl.String),
        pl.Series("_source_row", [r for _, r, _ in kept], dtype=pl.Int64),
    ]
    frame = records_frame([rec for _, _, rec in kept], columns=provenance)
    bad = None
    if rejected:
        bad = pl.DataFrame(
            {
                "_source_file": [w for w, _, _, _ in rejected],
                "_source_row": [r for _, r, _, _ in rejected],
                "_raw": [raw for _, _, raw, _ in rejected],
                "_reasons": [why for _, _, _, why in rejected],
            },
            schema={"_source_file": pl.String, "_source_row": pl.Int64,
                    "_raw": pl.String, "_reasons": pl.String},
        )
    files = tuple(dict.fromkeys(w for w, _, _ in kept))
    return Chunk(source=config.name, frame=frame, cursor=cursor, files=files, rejected=bad)


# ---- pagination ------------------------------------------------------------------------------


def _first_state(config: HttpSource) -> dict[str, Any]:
    return {
        "none": {},
        "page": {"page": config.start_page},
        "offset": {"offset": 0},
        "cursor": {"cursor": None},
        "link": {"url": None},
    }[config.pagination]


def _pages(
    config: HttpSource, session: HttpSession, state: dict[str, Any], *, since: Any
) -> Iterator[_Page]:
    mode = config.pagination
    previous: tuple[Any, ...] | None = None
    while True:
        url, params = session.url, dict(session.params)
        if since is not None and config.since_param:
            params[config.since_param] = since if isinstance(since, str) else json.dumps(since)
        if mode == "page":
            params[config.page_param] = state["page"]
        elif mode == "offset":
            params[config.offset_param] = state["offset"]
        elif mode == "cursor" and state["cursor"] is not None:
            params[config.cursor_param] = state["cursor"]
        elif mode == "link" and state["url"] is not None:
            url = session.expand(state["url"])
            params = {k: v for k, v in session.params.items() if k not in _query_keys(url)}
        if mode in ("page", "offset", "cursor") and config.size_param:
            params[config.size_param] = config.page_size
        response, body, where = session.get_json(url, params)
        records = _records(body, config.records, where)
        nxt: dict[str, Any] | None = None
        if mode in ("page", "offset") and records:
            if not (config.size_param and len(records) < config.page_size):
                if mode == "page":
                    nxt = {"page": state["page"] + 1}
                else:
                    nxt = {"offset": state["offset"] + len(records)}
                seen = (hashlib.sha256(response.content).hexdigest(),)
                if seen == previous:
                    raise SourceError(
                        f"{where} returned the same records as the page before it.",
                        hint=f"Check that the API takes '{_param(config)}' to page; "
                        "else set pagination: none or the API's own style.",
                    )
                previous = seen
        elif mode == "cursor":
            _, token = _dig(body, config.next_cursor or "")
            if token not in (None, ""):
                if token == state["cursor"]:
                    raise SourceError(f"{where} returned its own cursor as the next one.",
                                      hint="Check next_cursor and cursor_param.")
                nxt = {"cursor": token}
        elif mode == "link":
            target = response.links.get("next", {}).get("url")
            if target:
                absolute = str(response.url.join(target))
                stored = session.strip_config_params(absolute)
                if stored == state["url"]:
                    raise SourceError(f"{where} links to itself as the next page.")
                nxt = {"url": stored}
        yield _Page(records=records, where=where, next=nxt)
        if nxt is None:
            return
        state = nxt


def _param(config: HttpSource) -> str:
    return config.page_param if config.pagination == "page" else config.offset_param


def _records(body: Any, path: str | None, where: str) -> list[Any]:
    if path is None:
        if isinstance(body, list):
            return body
        raise SourceError(
            f"{where} answered with {_describe(body)}, not a list of records.",
            hint=_records_hint(body),
        )
    node = body
    for depth, part in enumerate(path.split(".")):
        if not isinstance(node, dict) or part not in node:
            at = ".".join(path.split(".")[:depth]) or "the top level"
            raise SourceError(
                f"{where}: records path {path!r} finds no {part!r} at {at}; "
                f"found {_describe(node)}.",
                hint=_records_hint(body),
            )
        node = node[part]
    if node is None:
        return []
    if not isinstance(node, list):
        raise SourceError(
            f"{where}: records path {path!r} leads to {_describe(node)}, not a list.",
            hint=_records_hint(body),
        )
    return node


def _records_hint(body: Any) -> str:
    paths = _list_paths(body)
    if paths:
        return f"Set 'records' to the path of the list, e.g. {paths[0]!r} (lists at: " \
            f"{', '.join(paths[:5])})."
    return "Set 'records' to the dotted path of the list of records in each response."


def _list_paths(node: Any, prefix: str = "", depth: int = 0) -> list[str]:
    if not isinstance(node, dict) or depth > 4:
        return []
    found: list[str] = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, list):
            found.append(path)
        else:
            found += _list_paths(value, f"{path}.", depth + 1)
    return found


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        keys = list(node)[:8]
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(node, list):
        return f"a list of {len(node)}"
    return f"{type(node).__name__} {first_line(repr(node))[:40]}"


# ---- small helpers ---------------------------------------------------------------------------


def _query_keys(url: str) -> set[str]:
    import httpx

    return set(httpx.URL(url).params.keys())


def _dig(node: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path; ``a.b`` also matches a literal key ``"a.b"``."""
    if isinstance(node, dict) and path in node:
        return True, node[path]
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1; None when the values are of kinds that do not compare."""
    a, b = _comparable(a), _comparable(b)
    try:
        return (a > b) - (a < b)
    except TypeError:
        return None


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        from datetime import datetime

        try:  # ISO timestamps compare as instants, not as text
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=None)
    return value


def _hash(record: Any) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _dump(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)
