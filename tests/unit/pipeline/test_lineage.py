"""The lineage of a served prediction: from its request id to the model version, the run,
the lake versions and contract, and the ingests (files) behind them, over HTTP (behind the
token), from the project and from ``loopml lineage``."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import RegistryError
from loopml.pipeline import Project

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

TRAINING = {"learners": ["linear"], "time_budget_s": 10, "max_trials": 2, "cv_folds": 3}
AUTH = {"Authorization": "Bearer t0ken"}


def test_a_prediction_traces_back_to_its_run_lake_versions_and_files(
    penguins_csv: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pl.read_csv(penguins_csv, null_values="NA")
    data = tmp_path / "data"
    data.mkdir()
    frame.head(200).write_csv(data / "a.csv")
    frame.slice(200, 100).write_csv(data / "b.csv")
    Project.init(data, target="species", directory=tmp_path, training=TRAINING)
    monkeypatch.setenv("LOOPML_SERVING__TOKEN", "t0ken")
    with Project(tmp_path) as project:
        result = project.run()
        record = frame.drop("species").row(0, named=True)
        with TestClient(project.app()) as client:
            answer = client.post("/predict", json={"records": [record, record]}).json()
            rid = answer["request_id"]
            assert client.get(f"/lineage/{rid}").status_code == 401
            over_http = client.get(f"/lineage/{rid}", headers=AUTH)
            missing = client.get("/lineage/nope", headers=AUTH)
        found = project.lineage(rid)
        with pytest.raises(RegistryError, match="nope"):
            project.lineage("nope")
    assert over_http.status_code == 200 and missing.status_code == 404
    assert "request id 'nope'" in missing.json()["error"]
    body = over_http.json()
    assert body["version"] == found["version"] == result.model_version.version
    assert [r["_prediction"] for r in found["predictions"]] == answer["predictions"]
    assert [r["_record"] for r in found["predictions"]] == [0, 1]
    assert found["run"]["id"] == result.run_id == body["run"]["id"]
    clean = next(t for t in found["lake_versions"] if t.startswith("clean/"))
    assert found["contract_fingerprint"] and found["model"]["files"]
    sources = found["sources"]  # the files, as the ingest committed them
    assert sorted(f for i in sources for f in i["files"]) == ["data/a.csv", "data/b.csv"]
    assert sum(i["rows_in"] for i in sources) == 300
    assert {i["clean"]["name"] for i in sources} == {clean}
    assert max(i["clean"]["version"] for i in sources) == found["lake_versions"][clean]

    shutil.rmtree(tmp_path / ".loopml" / "reports", ignore_errors=True)
    code, out = cli("lineage", rid, "--json", "--project", str(tmp_path))
    assert code == 0, out
    assert json.loads(out)["run"]["id"] == result.run_id
    code, out = cli("lineage", rid, "--project", str(tmp_path))
    assert code == 0 and f"Lineage of request {rid}" in out and "Ingests behind" in out
