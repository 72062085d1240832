"""A model registered by 'loopml run' is served in its compiled form: checked at registration,
recorded in the bundle and the catalog, loaded without unpickling, equal to the pickle."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopml.core.bundle import load_bundle
from loopml.pipeline import Project
from loopml.serve import predict_frame

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def test_the_champion_serves_compiled_and_equal(cli, penguins_csv: Path, tmp_path: Path,
                                                monkeypatch) -> None:
    monkeypatch.setenv("LOOPML_TRAINING__LEARNERS", "[lightgbm, extra_trees, linear]")
    assert cli("init", "penguins.csv", "--target", "species")[0] == 0
    code, out = cli("run", "--time-budget", "8")
    assert code == 0, out

    with Project(tmp_path) as proj:
        mv = proj.catalog.model_version(proj.model_name, "champion")
        folder = Path(proj.catalog.fetch(mv.name, mv.version))
        record = json.loads((folder / "serving.json").read_text())
        assert record["form"] == "compiled", record
        assert record["max_abs_diff"] <= 1e-6 and record["rows_checked"] > 0
        assert "compiled/model.json" in proj.catalog.files_of(mv.name, mv.version)
        events = proj.catalog.events(kind="serving_form", subject=mv.ref)
        assert events and events[0]["payload"]["form"] == "compiled"
        pickled = load_bundle(folder)

        import joblib

        def no_pickles(*args, **kwargs):
            raise AssertionError("the compiled form must not unpickle anything")

        rows = pl.read_csv(penguins_csv, null_values="NA").drop("species")
        records = rows.head(40).to_dicts()
        with monkeypatch.context() as patched:
            patched.setattr(joblib, "load", no_pickles)
            with TestClient(proj.app()) as client:
                health = client.get("/health").json()
                assert health["serving_form"] == "compiled", health
                answer = client.post("/predict", json={"records": records}).json()

    expected = predict_frame(pickled, rows.head(40))
    assert answer["predictions"] == expected["_prediction"].to_list()
    np.testing.assert_allclose(np.asarray(answer["probabilities"]).max(axis=1),
                               expected["_score"].to_numpy(), rtol=0, atol=1e-6)

    code, out = cli("predict", "penguins.csv", "-o", "scored.parquet")
    assert code == 0, out
    batch = pl.read_parquet(tmp_path / "scored.parquet")
    whole = predict_frame(pickled, rows)
    assert batch["_prediction"].to_list() == whole["_prediction"].to_list()
    np.testing.assert_allclose(batch["_score"].to_numpy(), whole["_score"].to_numpy(),
                               rtol=0, atol=1e-6)

    # a compiled form this loopml cannot read (say, from a newer one) falls back to the pickle
    from loopml.pipeline._context import serving_bundle

    newer = tmp_path / "newer"
    shutil.copytree(folder, newer)
    spec = json.loads((newer / "compiled" / "model.json").read_text())
    (newer / "compiled" / "model.json").write_text(json.dumps({**spec, "format": 99}))
    fallback = serving_bundle(newer)
    assert fallback.serving_form == "pickle" and "could not be read" in fallback.serving_reason
    assert list(predict_frame(fallback, rows.head(5))["_prediction"]) == list(
        expected["_prediction"].head(5))
