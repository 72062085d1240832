"""A local S3-compatible server (moto) with a fresh bucket, for lakes on s3://."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    @property
    def options(self) -> dict[str, str]:
        """Delta's storage options for this server (what storage.storage_options holds)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 at a free port, for the whole session.

    It runs in its own process: some delta-rs calls (``history``) hold the GIL while they
    wait for the network, so a server thread in the test's interpreter would never answer.
    """
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to 30 s for the server to listen
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    pytest.fail(f"moto's S3 server exited with code {server.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("moto's S3 server did not start listening within 30 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3(s3_server: str) -> S3:
    """A new bucket on the local S3 server."""
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3 = S3(s3_server, bucket)
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return s3
