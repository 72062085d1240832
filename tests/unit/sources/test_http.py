"""HTTP JSON API sources against a local server: every pagination style, auth, retries, errors,
incremental watermarks and resuming after a crash; the token never shows anywhere."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.core.config import HttpSource
from loopml.core.errors import SourceError
from loopml.core.records import Chunk
from loopml.sources import _http_client, read_chunks

TOKEN = "Bearer s3cret-TOKEN-4711"
API_KEY = "k3y-VALUE-0815"


@dataclass
class Api:
    """What the server serves and what it saw."""

    items: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path -> codes to answer first
    base: str = ""
    raw: bytes = b""  # what /raw answers


def _items(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}", "geo": {"lat": i / 10, "lon": -i}, "ts": i // 2}
            for i in range(1, n + 1)]


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def send(self, code: int, body: Any, headers: dict[str, str] | None = None,
                 raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if raw is None else "text/html")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            api.requests.append((url.path, q, dict(self.headers)))
            pending = api.failures.get(url.path)
            if pending:
                code = pending.pop(0)
                if code == 0:  # a dropped connection: no response at all
                    self.close_connection = True
                    return
                self.send(code, {"error": "busy"}, {"Retry-After": "2"} if code == 429 else None)
                return
            items = api.items
            if "since" in q:
                items = [i for i in items if i["ts"] >= int(q["since"])]
            if url.path == "/all":
                self.send(200, items)
            elif url.path == "/wrapped":
                self.send(200, {"data": {"items": items}, "count": len(items)})
            elif url.path == "/page":
                size = int(q.get("size", 10))
                page = int(q["page"])
                self.send(200, {"items": items[(page - 1) * size : page * size]})
            elif url.path == "/offset":
                start, size = int(q["offset"]), int(q.get("limit", 7))
                self.send(200, {"items": items[start : start + size]})
            elif url.path == "/cursor":
                start, size = int(q.get("cursor", 0)), int(q["limit"])
                nxt = start + size if start + size < len(items) else None
                self.send(200, {"items": items[start : start + size], "meta": {"next": nxt}})
            elif url.path == "/link":
                after = int(q.get("after", 0))
                chunk = [i for i in items if i["id"] > after][:6]
                headers = {}
                if chunk and chunk[-1]["id"] < items[-1]["id"]:
                    headers["Link"] = f'</link?after={chunk[-1]["id"]}>; rel="next"'
                self.send(200, chunk, headers)
            elif url.path == "/auth":
                if self.headers.get("Authorization") != TOKEN or q.get("api_key") != API_KEY:
                    self.send(401, {"error": "bad token"})
                else:
                    self.send(200, {"items": items})
            elif url.path == "/away":  # the next page is on another origin
                port = api.base.rsplit(":", 1)[1]
                self.send(200, items[:2], {"Link": f'<http://localhost:{port}/all>; rel="next"'})
            elif url.path == "/raw":
                self.send(200, None, raw=api.raw)
            elif url.path == "/html":
                self.send(200, None, raw=b"<html><body>maintenance</body></html>")
            elif url.path == "/count":
                self.send(200, {"data": {"count": 3}})
            elif url.path == "/scalars":
                self.send(200, [{"id": 1}, 5, {"id": 2}])
            else:
                self.send(404, {"error": "no such path"})

    return Handler


@contextmanager
def serving(n: int = 25) -> Iterator[Api]:
    """The test API on a free port of 127.0.0.1, serving n items, until the block ends."""
    state = Api(items=_items(n))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Iterator[Api]:
    with serving() as state:
        yield state


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    seen: list[float] = []
    monkeypatch.setattr(_http_client, "_sleep", seen.append)
    return seen


def source(api: Api, path: str, **kw: Any) -> HttpSource:
    return HttpSource(name="api", kind="http", url=api.base + path, **kw)


def read(config: HttpSource, cursor: dict[str, Any] | None = None) -> list[Chunk]:
    return list(read_chunks(config, cursor=cursor))


def ids(chunks: list[Chunk]) -> list[int]:
    return [i for c in chunks for i in c.frame["id"].to_list()]


PAGED = [  # one per style, each over several pages
    ("/page", {"records": "items", "pagination": "page"}),  # stops on the empty page
    ("/offset", {"records": "items", "pagination": "offset"}),
    ("/cursor", {"records": "items", "pagination": "cursor", "next_cursor": "meta.next",
                 "size_param": "limit", "page_size": 4}),
    ("/link", {"pagination": "link"}),
]


@pytest.mark.parametrize(
    ("path", "kw"),
    [
        ("/all", {}),
        ("/wrapped", {"records": "data.items"}),
        *PAGED,
        ("/page", {"records": "items", "pagination": "page", "size_param": "size",
                   "page_size": 10}),  # stops on the short page
        ("/offset", {"records": "items", "pagination": "offset", "size_param": "limit",
                     "page_size": 7}),
    ],
)
def test_every_pagination_style_reads_every_record_once(
    api: Api, path: str, kw: dict[str, Any]
) -> None:
    """Each style reads all 25 records exactly once, in order, with provenance per page."""
    chunks = read(source(api, path, **kw))
    assert ids(chunks) == list(range(1, 26))
    assert chunks[-1].cursor == {"complete": True}
    frame = pl.concat([c.frame for c in chunks])
    assert frame["_source_row"].dtype == pl.Int64
    assert frame.select("_source_file", "_source_row").is_unique().all()
    assert all(f.startswith(api.base + path) for f in frame["_source_file"].to_list())


def test_page_requests_stop_at_the_short_page(api: Api) -> None:
    """With a known page size the short third page ends the run: no fourth request."""
    read(source(api, "/page", records="items", pagination="page", size_param="size",
                page_size=10))
    assert [q["page"] for _, q, _ in api.requests] == ["1", "2", "3"]
    assert all(q["size"] == "10" for _, q, _ in api.requests)


def test_nested_objects_become_dotted_columns(api: Api) -> None:
    """Nested objects are flattened to a.b columns with native types."""
    frame = read(source(api, "/all"))[0].frame
    assert frame.columns == ["id", "name", "geo.lat", "geo.lon", "ts", "_source_file",
                             "_source_row"]
    assert frame["geo.lat"].dtype == pl.Float64 and frame["geo.lon"].dtype == pl.Int64
    assert frame["_source_row"].to_list() == list(range(1, 26))


def test_one_chunk_per_page_or_per_n_pages(api: Api) -> None:
    """pages_per_chunk groups pages into one chunk; each chunk's cursor says where to resume."""
    one = read(source(api, "/page", records="items", pagination="page"))
    assert [c.frame.height for c in one] == [10, 10, 5]
    assert one[0].cursor == {"resume": {"next": {"page": 2}}}
    two = read(source(api, "/page", records="items", pagination="page", pages_per_chunk=2))
    assert [c.frame.height for c in two] == [20, 5]


@pytest.mark.parametrize(("path", "kw"), PAGED)
def test_a_crash_after_a_committed_page_resumes_after_it(
    api: Api, path: str, kw: dict[str, Any]
) -> None:
    """Restarting from the cursor of the last committed chunk reads only what came after."""
    config = source(api, path, **kw)
    first = next(iter(read_chunks(config)))  # committed; then the process dies
    rest = read(config, cursor=json.loads(json.dumps(first.cursor)))
    assert ids([first]) + ids(rest) == list(range(1, 26))


def test_max_pages_stops_an_ingest_and_the_next_goes_on(api: Api) -> None:
    """An ingest reads at most max_pages pages; the next ingest continues from there."""
    config = source(api, "/offset", records="items", pagination="offset", max_pages=2)
    first = read(config)
    assert ids(first) == list(range(1, 15))
    second = read(config, cursor=first[-1].cursor)
    assert ids(second) == list(range(15, 26))
    assert second[-1].cursor == {"resume": {"next": {"offset": 25}}}  # 2 more pages read
    third = read(config, cursor=second[-1].cursor)  # the empty page ends the run
    assert third[-1].frame.height == 0 and third[-1].cursor == {"complete": True}


def test_watermark_keeps_only_newer_records_and_ties_once(api: Api) -> None:
    """Only records newer than the last ingest's watermark are kept; a new record at the same
    value is kept, the ones read before are not, an older one is skipped."""
    config = source(api, "/all", watermark="ts", since_param="since")
    first = read(config)
    assert ids(first) == list(range(1, 26))
    assert first[-1].cursor["watermark"] == 12  # ids 24 and 25 share ts 12
    assert len(first[-1].cursor["at_watermark"]) == 2
    assert "since" not in api.requests[0][1]  # nothing to send the first time
    api.items += [{"id": 26, "name": "tie", "geo": {"lat": 0, "lon": 0}, "ts": 12},
                  {"id": 27, "name": "new", "geo": {"lat": 0, "lon": 0}, "ts": 13},
                  {"id": 28, "name": "old", "geo": {"lat": 0, "lon": 0}, "ts": 3}]
    second = read(config, cursor=first[-1].cursor)
    assert ids(second) == [26, 27]
    assert api.requests[-1][1]["since"] == "12"
    assert second[-1].cursor["watermark"] == 13
    assert read(config, cursor=second[-1].cursor) == []  # nothing new: no chunk


def test_watermark_moves_only_when_the_run_is_complete(api: Api) -> None:
    """A crash mid-run resumes with the old watermark, so unsorted pages lose nothing."""
    api.items.reverse()  # newest first: the first page holds the largest values
    config = source(api, "/page", records="items", pagination="page", watermark="ts")
    first = next(iter(read_chunks(config)))
    assert "watermark" not in first.cursor and first.cursor["resume"]["high"] == 12
    rest = read(config, cursor=first.cursor)
    assert sorted(ids([first]) + ids(rest)) == list(range(1, 26))
    assert rest[-1].cursor["watermark"] == 12 and "resume" not in rest[-1].cursor


def test_records_without_the_watermark_go_to_quarantine(api: Api) -> None:
    """A record missing the watermark field is rejected with a reason, not dropped."""
    api.items[3].pop("ts")
    chunk = read(source(api, "/all", watermark="ts"))[0]
    assert chunk.frame.height == 24
    assert chunk.rejected is not None and chunk.rejected["_source_row"].to_list() == [4]
    assert "watermark field 'ts'" in chunk.rejected["_reasons"][0]
    assert json.loads(chunk.rejected["_raw"][0])["id"] == 4


def test_records_that_are_not_objects_are_rejected(api: Api) -> None:
    """A scalar in the list of records goes to quarantine with its position."""
    chunk = read(source(api, "/scalars"))[0]
    assert chunk.frame["id"].to_list() == [1, 2]
    assert chunk.frame["_source_row"].to_list() == [1, 3]
    assert chunk.rejected is not None and chunk.rejected["_raw"].to_list() == ["5"]


def _texts(chunks: list[Chunk]) -> str:
    parts = [json.dumps(c.cursor) for c in chunks]
    for c in chunks:
        parts.append(c.frame.write_csv())
        parts += list(c.files)
    return "\n".join(parts)


def _error_texts(exc: BaseException) -> str:
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), str(getattr(seen, "hint", ""))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def test_auth_header_and_secret_params_reach_the_api_and_nowhere_else(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The token from auth_env and a ${VAR} api key are sent, but are absent from the frame,
    the cursor, provenance and every log line."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    config = source(api, "/auth", records="items", auth_env="TEST_API_TOKEN",
                    params={"api_key": "${TEST_API_KEY}", "lang": "en"})
    chunks = read(config)
    assert ids(chunks) == list(range(1, 26))
    assert api.requests[-1][2]["Authorization"] == TOKEN
    assert chunks[0].frame["_source_file"][0] == api.base + "/auth?lang=en"
    out = _texts(chunks) + caplog.text
    assert "api_key=***" in caplog.text  # httpx logged the request, with the key scrubbed
    for secret in ("s3cret-TOKEN-4711", API_KEY):
        assert secret not in out


def test_a_wrong_token_is_a_clear_error_without_the_token(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """401 is not retried; the error names the URL and the variable, never the token."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_API_TOKEN", "Bearer wrong-TOKEN-1234")
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    config = source(api, "/auth", records="items", auth_env="TEST_API_TOKEN",
                    params={"api_key": "${TEST_API_KEY}"})
    with pytest.raises(SourceError) as err:
        read(config)
    assert "401" in err.value.message and "/auth" in err.value.message
    assert "TEST_API_TOKEN" in (err.value.hint or "")
    assert len(api.requests) == 1
    for secret in ("wrong-TOKEN-1234", API_KEY):
        assert secret not in _error_texts(err.value) + caplog.text


def test_a_missing_auth_variable_is_a_clear_error(api: Api,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """auth_env naming an unset variable fails before any request."""
    monkeypatch.delenv("TEST_NO_SUCH_TOKEN", raising=False)
    with pytest.raises(SourceError, match="TEST_NO_SUCH_TOKEN"):
        read(source(api, "/auth", auth_env="TEST_NO_SUCH_TOKEN"))
    assert api.requests == []


@pytest.mark.parametrize(("codes", "tries"), [([429], 2), ([503, 502], 3), ([0], 2),
                                              ([0, 500, 0], 4)])
def test_429_5xx_and_dropped_connections_are_retried(
    api: Api, waits: list[float], codes: list[int], tries: int,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Transient failures are retried with backoff and every record still arrives once."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    api.failures["/auth"] = list(codes)
    config = source(api, "/auth", records="items", auth_env="TEST_API_TOKEN",
                    params={"api_key": "${TEST_API_KEY}"}, backoff_s=0.01)
    assert ids(read(config)) == list(range(1, 26))
    assert len(api.requests) == tries
    assert len(waits) == tries - 1
    if codes == [429]:
        assert waits[0] >= 2  # Retry-After: 2 is honoured
    if len(waits) > 1:
        assert all(w <= 0.01 * 2**i * 1.5 + 1e-9 for i, w in enumerate(waits))
    assert "retry 1 of 5" in caplog.text
    assert "s3cret-TOKEN-4711" not in caplog.text and API_KEY not in caplog.text


def test_retries_give_up_with_a_clear_error(api: Api, waits: list[float]) -> None:
    """After `retries` retries the last failure is reported, not a traceback."""
    api.failures["/all"] = [503] * 10
    with pytest.raises(SourceError) as err:
        read(source(api, "/all", retries=2, backoff_s=0.01))
    assert "failed 3 time(s)" in err.value.message and "503" in err.value.message
    assert len(api.requests) == 3 and len(waits) == 2


def test_a_retry_after_longer_than_allowed_is_an_error(api: Api, waits: list[float]) -> None:
    """Retry-After beyond max_retry_wait_s stops with a hint instead of sleeping for long."""
    api.failures["/all"] = [429]
    with pytest.raises(SourceError, match="asks to wait 2 s"):
        read(source(api, "/all", max_retry_wait_s=1))
    assert waits == []


def test_an_unreachable_api_is_a_clear_error(waits: list[float]) -> None:
    """A refused connection is retried, then reported with the address."""
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = HttpSource(name="api", kind="http", url=f"http://127.0.0.1:{port}/x",
                        retries=1, backoff_s=0.01)
    with pytest.raises(SourceError, match="connection failed"):
        read(config)
    assert len(waits) == 1


def test_a_response_that_is_not_json_names_the_url_and_what_came(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTML page is a SourceError naming the redacted URL and the start of the body."""
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    with pytest.raises(SourceError) as err:
        read(source(api, "/html", params={"token": "${TEST_API_KEY}"}))
    assert "not JSON" in err.value.message and "maintenance" in err.value.message
    assert api.base + "/html" in err.value.message
    assert API_KEY not in _error_texts(err.value)
    assert err.value.__cause__ is None


def test_a_records_path_that_finds_no_list_is_a_clear_error(api: Api) -> None:
    """`records` that leads to a number, or nowhere, says what was found and where lists are."""
    with pytest.raises(SourceError, match="leads to int 3, not a list"):
        read(source(api, "/count", records="data.count"))
    with pytest.raises(SourceError, match="finds no 'rows' at data") as err:
        read(source(api, "/count", records="data.rows"))
    assert "count" in err.value.message
    with pytest.raises(SourceError, match="not a list of records") as err:
        read(source(api, "/wrapped"))
    assert "data.items" in (err.value.hint or "")


def test_an_api_that_ignores_the_page_parameter_is_stopped(api: Api) -> None:
    """The same page twice is an error, not an endless loop."""
    with pytest.raises(SourceError, match="same records"):
        read(source(api, "/wrapped", records="data.items", pagination="page"))


def test_not_found_is_not_retried(api: Api, waits: list[float]) -> None:
    """4xx other than 429 fails at once with the status."""
    with pytest.raises(SourceError, match="HTTP 404"):
        read(source(api, "/nope"))
    assert waits == [] and len(api.requests) == 1


def test_cursor_pagination_needs_a_path() -> None:
    """pagination: cursor without next_cursor is a config error."""
    with pytest.raises(ValueError, match="next_cursor"):
        HttpSource(name="api", kind="http", url="http://127.0.0.1/x", pagination="cursor")


def test_credentials_in_the_url_never_reach_provenance(api: Api) -> None:
    """user:password in the url and a secret-looking parameter are left out of _source_file."""
    url = api.base.replace("http://", "http://alice:pw-SECRET-99@") + "/all?access_token=tok-77"
    chunk = read(HttpSource(name="api", kind="http", url=url))[0]
    assert set(chunk.frame["_source_file"].to_list()) == {api.base + "/all"}


def test_next_links_carry_the_configured_parameters_but_the_cursor_does_not(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A next link without the api key still gets it on the request; the cursor stored in the
    catalog holds the link without it."""
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    config = source(api, "/link?api_key=${TEST_API_KEY}", pagination="link")
    chunks = read(config)
    assert ids(chunks) == list(range(1, 26))
    assert all(q.get("api_key") == API_KEY for _, q, _ in api.requests)
    assert chunks[0].cursor == {"resume": {"next": {"url": api.base + "/link?after=6"}}}
    assert API_KEY not in _texts(chunks)


def test_the_auth_header_is_only_sent_to_the_sources_own_origin(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A next link to another host gets no auth header."""
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)
    chunks = read(source(api, "/away", pagination="link", auth_env="TEST_API_TOKEN"))
    assert ids(chunks) == [1, 2] + list(range(1, 26))
    (_, _, first), (_, _, second) = api.requests
    assert first["Authorization"] == TOKEN and "Authorization" not in second


def test_a_changed_pagination_starts_over(api: Api) -> None:
    """A resume cursor of another pagination style is not misread: the run starts over."""
    config = source(api, "/offset", records="items", pagination="offset")
    assert ids(read(config, cursor={"resume": {"next": {"page": 3}}})) == list(range(1, 26))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from("abd"), inner, max_size=3)),
    max_leaves=10,
)
bodies = st.one_of(st.binary(max_size=60), json_values.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from([None, "a", "a.b"]))
def test_any_answer_is_records_or_a_source_error(api: Api, body: bytes, path: str | None) -> None:
    """Whatever the API answers, the reader gives chunks or one SourceError, nothing else."""
    api.raw = body
    try:
        chunks = read(source(api, "/raw", records=path, retries=0))
    except SourceError as exc:
        assert api.base + "/raw" in exc.message
        return
    rows = sum(c.frame.height + (0 if c.rejected is None else c.rejected.height)
               for c in chunks)
    found = json.loads(body)
    for part in (path.split(".") if path else []):
        found = found[part]
    assert rows == len(found or [])
