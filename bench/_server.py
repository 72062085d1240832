"""``loopml serve`` in a subprocess on a free loopback port, for the serving benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def start_server(project_dir: Path, *, env: dict[str, str] | None = None,
                 timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """Start ``loopml serve`` for the project's champion and wait until /health answers."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "loopml", "serve", "--project", str(project_dir),
         "--port", str(port)],
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"The server exited before it answered:\n{server.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"The server did not answer within {timeout:.0f} s.")
