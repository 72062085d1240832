"""The project serves the champion alias, follows promotions, takes feedback from HTTP and
files (with catalog events) and carries the id column through batch scoring."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import polars as pl
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from loopml.core.bundle import save_bundle
from loopml.pipeline import Project
from tests.unit.serve.serve_models import FEATURES, bundle, flights, record


@pytest.fixture(scope="module")
def models():
    return bundle("classification"), bundle("classification", data=flights(300, seed=9))


@pytest.fixture
def project(tmp_path: Path, models) -> Project:
    """A project with two registered versions of 'flights', version 1 the champion."""
    data = flights(60).with_columns(pl.int_range(0, 60).cast(pl.String).alias("flight_id"))
    data.write_csv(tmp_path / "flights.csv")
    Project.init(tmp_path / "flights.csv", target="late", directory=tmp_path, name="flights")
    env = {"LOOPML_PROBLEM__ID_COLUMN": "flight_id", "LOOPML_SERVING__TOKEN": "t0ken",
           "LOOPML_SERVING__FOLLOW_S": "3600"}
    proj = Project(tmp_path, env=env)
    for i, b in enumerate(models, start=1):
        folder = save_bundle(b, tmp_path / f"bundle{i}")
        proj.catalog.register_model("flights", folder, run_id=None, task="classification",
                                    metric="roc_auc", score=0.8, metrics={})
    proj.catalog.set_alias("flights", "champion", 1)
    yield proj
    proj.close()


AUTH = {"Authorization": "Bearer t0ken"}


def test_the_server_follows_a_promotion(project):
    """After 'promote', /reload swaps in the new champion; answers name the version."""
    with TestClient(project.app()) as client:
        assert client.post("/predict", json={"records": [record()]}).json()["version"] == 1
        project.promote("flights", 2)
        assert client.post("/reload").status_code == 401
        assert client.post("/reload", headers=AUTH).json()["changed"] is True
        assert client.post("/predict", json={"records": [record()]}).json()["version"] == 2


def test_http_feedback_is_a_catalog_event(project):
    """Labels sent to /feedback are upserted and leave a 'feedback' event with the counts."""
    with TestClient(project.app()) as client:
        body = client.post("/predict", json={"records": [record(flight_id="F1")]}).json()
        answer = client.post("/feedback", headers=AUTH, json={"labels": [
            {"id": "F1", "label": "late"}, {"request_id": body["request_id"], "record": 5,
                                            "label": "late"}]}).json()  # fmt: skip
    assert (answer["accepted"], answer["unknown"]) == (1, 1)
    (event,) = project.catalog.events(kind="feedback")
    assert event["payload"]["accepted"] == 1 and event["payload"]["via"] == "http"


def test_feedback_file_by_id_after_batch_scoring(project, tmp_path):
    """Batch scoring logs the id column as _id; a label file by id is taken and recorded."""
    project.predict(tmp_path / "flights.csv", tmp_path / "scored.csv")
    logged = project.lake.read("predictions/flights")
    assert logged["_id"].to_list()[:3] == ["0", "1", "2"]
    labels = pl.DataFrame({"flight_id": ["0", "1", "999"], "label": ["late", "on_time", "late"]})
    labels.write_csv(tmp_path / "labels.csv")
    result = project.feedback(tmp_path / "labels.csv")
    assert (result.accepted, result.unknown, result.invalid) == (2, 1, 0)
    table = project.lake.read("feedback/flights").sort("_id")
    assert table["_label"].to_list() == ["late", "on_time"]
    (event,) = project.catalog.events(kind="feedback")
    assert event["payload"]["via"] == "file" and event["payload"]["unknown"] == 1
    assert set(FEATURES) <= set(logged.columns)


def test_cli_feedback_prints_counts_and_problems(project, tmp_path, monkeypatch):
    """'loopml feedback FILE' upserts the labels and prints the counts and each problem."""
    from typer.testing import CliRunner

    from loopml.cli import app

    project.predict(tmp_path / "flights.csv", tmp_path / "scored.csv")
    pl.DataFrame({"flight_id": ["3", "4"], "label": ["late", "maybe"]}).write_ndjson(
        tmp_path / "labels.ndjson"
    )
    monkeypatch.setenv("LOOPML_PROBLEM__ID_COLUMN", "flight_id")
    result = CliRunner().invoke(app, ["feedback", str(tmp_path / "labels.ndjson"),
                                      "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Accepted 1, unknown 0, invalid 1." in result.output
    assert "'maybe'" in result.output
