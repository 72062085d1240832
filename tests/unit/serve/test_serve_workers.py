"""``loopml serve --workers 2``: two processes share the port, each follows the champion
alias and logs to the same lake table; SIGTERM to the parent stops both and every answered
prediction is in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import polars as pl
from tests.unit.serve.serve_models import bundle, flights, record
from tests.unit.serve.test_serve_process import _free_port, _wait_until_up

from loopml.core.bundle import save_bundle
from loopml.lake import Lake
from loopml.pipeline import Project

ROOT = Path(__file__).resolve().parents[3]
REQUESTS = 120


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


def test_two_workers_share_the_port_follow_the_alias_and_log_everything(tmp_path: Path):
    folder = _project(tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]), "LOOPML_SERVING__FOLLOW_S": "0.2",
        "LOOPML_SERVING__LOG_FLUSH_S": "60", "OMP_WAIT_POLICY": "PASSIVE"}
    log = (tmp_path / "server.log").open("w")  # a pipe nobody reads would fill and block
    server = subprocess.Popen(
        [sys.executable, "-m", "loopml", "serve", "--workers", "2", "--port", str(port),
         "--project", str(folder)],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def call(i: int) -> tuple[int, int, str]:
        with httpx.Client(base_url=url, timeout=30) as client:  # a new connection each
            answer = client.post("/predict", json={"records": [record(dep_hour=i % 24)]})
            pid = client.get("/health").json()["pid"]
        return answer.status_code, pid, answer.json()["request_id"]

    try:
        _wait_until_up(url, server, output=(tmp_path / "server.log").read_text)
        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(call, range(REQUESTS)))
        with Project(folder) as proj:
            proj.promote("flights", 2)
        time.sleep(1.5)  # both workers look at the alias every 0.2 s
        with ThreadPoolExecutor(8) as pool:
            versions = list(pool.map(lambda _: httpx.post(
                f"{url}/predict", json={"records": [record()]}, timeout=30).json()["version"],
                range(20)))
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
    stderr = (tmp_path / "server.log").read_text()
    assert {status for status, _, _ in first} == {200}
    assert len({pid for _, pid, _ in first}) == 2, "both workers answered"
    assert set(versions) == {2}
    assert "with 2 workers" in stderr and "Traceback" not in stderr
    logged = Lake(folder / ".loopml" / "lake").read("predictions/flights")
    assert logged.height == REQUESTS + 20
    assert set(logged["_request_id"].to_list()) >= {rid for _, _, rid in first}
    assert logged.group_by("_model_version").len().sort("_model_version")["len"].to_list() == [
        REQUESTS, 20]
    assert pl.Series([p for _, p, _ in first]).n_unique() == 2
