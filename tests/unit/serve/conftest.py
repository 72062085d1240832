from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

with warnings.catch_warnings():
    # starlette asks for httpx2; the TestClient works the same with httpx
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from loopml.lake import Lake
from loopml.serve import PredictionLog, create_app
from tests.unit.serve import serve_models


@pytest.fixture(scope="session")
def classifier():
    return serve_models.bundle("classification")


@pytest.fixture(scope="session")
def regressor():
    return serve_models.bundle("regression")


@pytest.fixture(scope="session")
def clusterer():
    return serve_models.bundle("clustering")


@pytest.fixture
def lake(tmp_path):
    return Lake(tmp_path / "lake")


@pytest.fixture
def client_for():
    """Open a TestClient (lifespan included) on a bundle; closed at the end of the test."""
    opened = []

    def open_client(bundle, *, log: PredictionLog | None = None, version: int = 1, **kwargs):
        client = TestClient(
            create_app(bundle, model_name="flights", version=version, log=log, **kwargs)
        )
        opened.append(client)
        return client.__enter__()

    yield open_client
    for client in opened:
        client.__exit__(None, None, None)
