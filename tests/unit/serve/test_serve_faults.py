"""``loopml serve`` under load while its lake becomes unwritable, then SIGTERM.

Client threads send predictions the whole time (loopback only, bounded in requests and
time). Midway the lake folder is taken away (a file put in its place: permissions would not
stop root), later given back. Every request is answered; ``/ready`` and ``/metrics`` report
the fault while it lasts; the rows wait in the bounded buffer, then go to the dead-letter
file outside the lake; SIGTERM drains the requests in flight and flushes the log. In the
end every answered prediction is in exactly one place: the log table, the dead-letter table
or the dead-letter file.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import polars as pl

from loopml.core.bundle import save_bundle
from loopml.lake import Lake
from loopml.pipeline import Project
from tests.unit.serve.serve_models import bundle, flights, record
from tests.unit.serve.test_serve_process import _wait_until_up, start_project_server

CLIENTS = 8
MAX_REQUESTS_EACH = 2_000  # a bound: the load stops here even if a phase never ends
PHASE_S = 30.0  # the longest any phase may wait for what it expects


def _project(tmp_path: Path) -> Path:
    flights(40).write_csv(tmp_path / "flights.csv")
    Project.init(tmp_path / "flights.csv", target="late", directory=tmp_path, name="flights")
    with Project(tmp_path) as proj:
        folder = save_bundle(bundle("classification", data=flights(300)), tmp_path / "bundle")
        proj.catalog.register_model("flights", folder, run_id=None, task="classification",
                                    metric="roc_auc", score=0.8, metrics={})
        proj.catalog.set_alias("flights", "champion", 1)
    return tmp_path


class Load:
    """Client threads posting one record at a time until stopped; each keeps what it got."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[int, str | None]] = []  # (status, request id)
        self.refused = 0  # connections refused once the server stopped listening
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for n in range(MAX_REQUESTS_EACH):
                if self.stop.is_set():
                    return
                try:
                    answer = client.post("/predict",
                                         json={"records": [record(dep_hour=(i + n) % 24)]})
                except httpx.TransportError:
                    with self._lock:
                        self.refused += 1
                    time.sleep(0.05)
                    continue
                body = answer.json() if answer.status_code == 200 else {}
                with self._lock:
                    self.answers.append((answer.status_code, body.get("request_id")))

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PHASE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {PHASE_S:.0f} s: {what}")


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not in /metrics")


def test_an_unwritable_lake_under_load_loses_nothing_and_sigterm_drains(tmp_path: Path):
    folder = _project(tmp_path)
    lake_dir = folder / ".loopml" / "lake"
    dead_file = folder / ".loopml" / "deadletter" / "deadletter.predictions.flights.ndjson"
    output = tmp_path / "server.log"
    server, url = start_project_server(folder, output, env={
        "LOOPML_SERVING__LOG_FLUSH_S": "0.2", "LOOPML_SERVING__LOG_BATCH_ROWS": "20",
        "LOOPML_SERVING__FOLLOW_S": "60"})
    try:
        _wait_until_up(url, server, output=output.read_text)
        with Load(url) as load:
            _until(lambda: load.count() >= 50, "the first answers")
            _until(lambda: _metric(url, "loopml_log_written_rows_total") > 0,
                   "the first rows written")
            away = lake_dir.with_name("lake.away")
            lake_dir.rename(away)
            lake_dir.write_text("the lake is gone")  # nothing can be written under it
            _until(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 503,
                   "/ready reports the log cannot write")
            assert _metric(url, "loopml_log_writable") == 0.0
            _until(lambda: dead_file.exists() and _metric(
                url, "loopml_log_dead_letter_file_rows_total") > 0,
                "rows reach the dead-letter file")
            during = load.count()
            lake_dir.unlink()
            away.rename(lake_dir)
            _until(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 200,
                   "/ready recovers once the lake is back")
            _until(lambda: load.count() >= during + 50, "answers after the fault")
            server.send_signal(signal.SIGTERM)  # with requests in flight
            server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    text = output.read_text()
    # uvicorn finishes the requests in flight and the app's shutdown (the log's flush), then
    # ends by the signal it was sent
    assert server.returncode in (0, -signal.SIGTERM), text[-3000:]
    assert "Application shutdown complete" in text and "Traceback" not in text
    statuses = pl.Series([s for s, _ in load.answers])
    assert statuses.len() >= 150
    assert set(statuses.to_list()) == {200}, statuses.value_counts()
    answered = [rid for _, rid in load.answers]
    assert len(set(answered)) == len(answered)
    lake = Lake(lake_dir)
    places = {"table": lake.read("predictions/flights")["_request_id"].to_list(),
              "file": pl.read_ndjson(dead_file)["_request_id"].to_list()}
    if "deadletter/predictions/flights" in lake.tables():
        places["dead table"] = lake.read("deadletter/predictions/flights")["_request_id"].to_list()
    everywhere = [rid for ids in places.values() for rid in ids]
    assert sorted(everywhere) == sorted(answered), {k: len(v) for k, v in places.items()}
    assert len(places["file"]) > 0 and len(places["table"]) > 0
