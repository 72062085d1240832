"""``loopml serve`` under sustained load: 200 concurrent clients for 60 s on the loopback
interface (bounded in time and in requests). No request fails, and after SIGTERM every
answered prediction is in the log, once."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from loopml.lake import Lake
from tests.unit.serve.serve_models import record
from tests.unit.serve.test_serve_faults import _project
from tests.unit.serve.test_serve_process import _wait_until_up, start_project_server

pytestmark = pytest.mark.slow

CLIENTS = 200
SECONDS = 60.0
MAX_REQUESTS = 200_000  # a bound on the whole run, whatever the server's speed


async def _load(url: str) -> tuple[list[str], dict[str, int]]:
    """``CLIENTS`` clients, each sending one record at a time on its own connection until
    ``SECONDS`` have passed: the request ids answered, and the count of each other outcome."""
    answered: list[str] = []
    other: dict[str, int] = {}
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client(i: int) -> None:
            n = 0
            while time.monotonic() < deadline and len(answered) + sum(other.values()) < (
                    MAX_REQUESTS):
                n += 1
                try:
                    answer = await client.post(
                        "/predict", json={"records": [record(dep_hour=(i + n) % 24)]})
                except httpx.HTTPError as exc:
                    other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1
                    continue
                if answer.status_code == 200:
                    answered.append(answer.json()["request_id"])
                else:
                    other[str(answer.status_code)] = other.get(str(answer.status_code), 0) + 1

        await asyncio.gather(*(one_client(i) for i in range(CLIENTS)))
    return answered, other


def _in_own_loop(url: str) -> tuple[list[str], dict[str, int]]:
    """``_load`` in a thread of its own (the test's thread may already run an event loop)."""
    out: list[tuple[list[str], dict[str, int]]] = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(_load(url))))
    worker.start()
    worker.join()
    assert out, "the load thread failed"
    return out[0]


def test_200_clients_for_60_seconds_fail_nothing_and_lose_nothing(tmp_path: Path):
    folder = _project(tmp_path)
    output = tmp_path / "server.log"
    server, url = start_project_server(folder, output,
                                       env={"LOOPML_SERVING__LOG_FORMAT": "text"})
    try:
        _wait_until_up(url, server, output=output.read_text)
        answered, other = _in_own_loop(url)
        health = httpx.get(f"{url}/health", timeout=30).json()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    text = output.read_text()
    assert other == {}, other
    assert len(answered) >= CLIENTS, "every client was answered at least once"
    assert len(set(answered)) == len(answered)
    assert health["rows_dropped"] == 0 and health["rows_dead_lettered"] == 0
    logged = Lake(folder / ".loopml" / "lake").read("predictions/flights")
    assert logged.height == len(answered), text[-2000:]
    assert pl.Series(answered).sort().equals(logged["_request_id"].sort(), check_names=False)
    assert "Traceback" not in text
