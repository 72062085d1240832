from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from loopml.core.bundle import save_bundle
from loopml.lake import Lake
from tests.unit.serve.serve_models import record

SERVER = """
import sys
from loopml.core.bundle import load_bundle
from loopml.lake import Lake
from loopml.serve import PredictionLog, create_app, run_server

bundle_dir, lake_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = PredictionLog(Lake(lake_dir), "flights", batch_rows=1000, flush_s=60)
app = create_app(load_bundle(bundle_dir), model_name="flights", version=2, log=log)
run_server(app, host="127.0.0.1", port=port, access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ROOT = Path(__file__).resolve().parents[3]


def start_project_server(folder: Path, output: Path, *args: str,
                         env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``loopml serve`` of the project in ``folder`` on a free port, started (wait with
    ``_wait_until_up``), its output in the file ``output``: a pipe nobody reads would fill and
    block the server. The repository is on its path: test bundles pickle test functions."""
    port = _free_port()
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]), "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    with output.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "loopml", "serve", "--port", str(port), "--project",
             str(folder), *args],
            env=full, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    return server, f"http://127.0.0.1:{port}"


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 90.0,
                   output: Any = None) -> None:
    """Until ``/health`` answers; ``output()`` gives the server's output for the error (its
    stderr pipe by default)."""
    output = output or (lambda: server.stderr.read())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited early:\n{output()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server did not start in time")


def test_sigterm_writes_every_logged_prediction(classifier, tmp_path):
    """A real uvicorn server answers over HTTP, and stopped with SIGTERM writes every
    prediction it served to the lake."""
    save_bundle(classifier, tmp_path / "bundle")
    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "bundle"), str(tmp_path / "lake"), str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        request_ids = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for hour in range(40):
                answer = client.post("/predict", json={"records": [record(dep_hour=hour % 24)]})
                assert answer.status_code == 200
                request_ids.append(answer.json()["request_id"])
            answer = client.post("/predict", json={"records": [record()] * 10})
            request_ids.append(answer.json()["request_id"])
            health = client.get("/health").json()
        assert (health["rows_pending"], health["rows_logged"]) == (50, 0)
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert "Serving loopml model flights" in stderr
    assert "Traceback" not in stderr
    rows = Lake(tmp_path / "lake").read("predictions/flights")
    assert rows.height == 50
    assert rows["_request_id"].unique(maintain_order=True).to_list() == request_ids
    assert set(rows["_model_version"].to_list()) == {2}
