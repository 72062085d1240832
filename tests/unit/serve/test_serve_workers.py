"""``loopml serve --workers 2``: two processes share the port, each follows the champion
alias and logs to the same lake table; SIGTERM to the parent stops both and every answered
prediction is in the log."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from loopml.core.bundle import save_bundle
from loopml.lake import Lake
from loopml.pipeline import Project
from tests.unit.serve.serve_models import bundle, flights, record
from tests.unit.serve.test_serve_process import _wait_until_up, start_project_server

REQUESTS = 120
MAX_ROUNDS = 100  # a bound on the requests sent while waiting for the workers


def _project(tmp_path: Path) -> Path:
    flights(40).write_csv(tmp_path / "flights.csv")
    Project.init(tmp_path / "flights.csv", target="late", directory=tmp_path, name="flights")
    with Project(tmp_path) as proj:
        for i, seed in enumerate((0, 9), start=1):
            folder = save_bundle(bundle("classification", data=flights(300, seed=seed)),
                                 tmp_path / f"bundle{i}")
            proj.catalog.register_model("flights", folder, run_id=None, task="classification",
                                        metric="roc_auc", score=0.8, metrics={})
        proj.catalog.set_alias("flights", "champion", 1)
    return tmp_path


def _scraped_totals(url: str, answered: int, scrapes: int = 6) -> None:
    """Scrape /metrics until ``scrapes`` scrapes in a row, each on a new connection (either
    worker may answer), show ``answered`` /predict requests answered 200 and as many rows
    scored (a worker shares its counters every half second); fail after 60 scrapes."""
    import time

    def totals(text: str) -> tuple[float, float]:
        found = dict(line.rsplit(" ", 1) for line in text.splitlines()
                     if line and not line.startswith("#"))
        return (float(found.get('loopml_requests_total{endpoint="/predict",status="200"}', 0)),
                float(found["loopml_rows_scored_total"]))

    seen: list[tuple[float, float]] = []
    for _ in range(60):
        with httpx.Client(base_url=url, timeout=30) as client:
            seen.append(totals(client.get("/metrics").text))
        if seen[-1] != (answered, answered):
            seen = []  # not yet shared: start counting again
            time.sleep(0.2)
        elif len(seen) == scrapes:
            return
    raise AssertionError(f"/metrics never showed {answered} requests: {seen}")


def test_two_workers_share_the_port_follow_the_alias_and_log_everything(tmp_path: Path):
    folder = _project(tmp_path)
    server, url = start_project_server(folder, tmp_path / "server.log", "--workers", "2", env={
        "LOOPML_SERVING__FOLLOW_S": "0.2", "LOOPML_SERVING__LOG_FLUSH_S": "60"})

    def call(i: int) -> tuple[int, int, str, int]:
        with httpx.Client(base_url=url, timeout=30) as client:  # a new connection each
            answer = client.post("/predict", json={"records": [record(dep_hour=i % 24)]})
            pid = client.get("/health").json()["pid"]
        body = answer.json()
        return answer.status_code, pid, body["request_id"], body["version"]

    def until(done, what: str) -> list[tuple[int, int, str, int]]:
        """Rounds of 8 concurrent calls until ``done(answers)``, at most MAX_ROUNDS."""
        answers: list[tuple[int, int, str, int]] = []
        with ThreadPoolExecutor(8) as pool:
            for _ in range(MAX_ROUNDS):
                answers += pool.map(call, range(len(answers), len(answers) + 8))
                if done(answers):
                    return answers
        raise AssertionError(f"not after {len(answers)} requests: {what}")

    try:
        _wait_until_up(url, server, output=(tmp_path / "server.log").read_text)
        # the second worker may still be loading the model when the first answers
        first = until(lambda a: len(a) >= REQUESTS and len({p for _, p, _, _ in a}) == 2,
                      "both workers answered")
        with Project(folder) as proj:
            proj.promote("flights", 2)
        following = until(lambda a: {p for _, p, _, v in a[-16:] if v == 2} == {
            p for _, p, _, _ in first} and all(v == 2 for *_, v in a[-16:]),
            "both workers follow the promotion")
        # whichever worker answers a scrape, it counts both workers' requests
        _scraped_totals(url, len(first) + len(following))
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    stderr = (tmp_path / "server.log").read_text()
    answered = first + following
    assert {status for status, *_ in answered} == {200}
    assert {v for *_, v in first} == {1}
    assert "with 2 workers" in stderr and "Traceback" not in stderr
    logged = Lake(folder / ".loopml" / "lake").read("predictions/flights")
    assert sorted(logged["_request_id"].to_list()) == sorted(rid for _, _, rid, _ in answered)
    by_version = logged.group_by("_model_version").len().sort("_model_version")
    assert by_version["len"].to_list() == [sum(v == 1 for *_, v in answered),
                                           sum(v == 2 for *_, v in answered)]
