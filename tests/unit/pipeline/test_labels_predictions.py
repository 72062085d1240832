"""Predictions in the user's own labels: batch scoring, ``/predict`` and the prediction log
all answer with the labels the target was written in."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopml.lake import Lake
from loopml.pipeline import Project

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
pytestmark = pytest.mark.slow

TRAINING = {"time_budget_s": 3, "learners": ["linear"]}


def generated(kind: str, n: int = 300, seed: int = 0) -> pl.DataFrame:
    """Two informative features and a binary target spelled as ``kind`` says."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    z = rng.normal(0, 1, n)
    hit = x + 0.5 * z + rng.normal(0, 0.5, n) > 0.3
    target = {
        "yes/no": np.where(hit, "yes", "no"),
        "0/1": hit.astype(np.int64),
        "bool": hit,
    }[kind]
    return pl.DataFrame({"x": x.round(4), "z": z.round(4), "y": target})


def penguins() -> pl.DataFrame:
    spec = importlib.util.find_spec("palmerpenguins")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv"
    return pl.read_csv(path, null_values=["NA"])


def scored_everywhere(data: Path, folder: Path, target: str) -> dict:
    """Train on ``data``, then score it in batch, over ``/predict`` and read the log."""
    from fastapi.testclient import TestClient

    project = Project.init(data, target=target, directory=folder, training=TRAINING)
    with project:
        project.run()
        _, bundle = project.load()
        out = project.predict(data, folder / "scored.parquet")
        batch = pl.read_parquet(out)
        rows = batch.select(bundle.feature_columns).head(20)
        records = rows.to_dicts()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*httpx2.*")
            with TestClient(project.app()) as client:
                body = client.post("/predict", json={"records": records}).json()
        log = Lake(folder / ".loopml/lake").read("predictions/" + project.model_name)
    return {"bundle": bundle, "batch": batch, "body": body, "log": log}


@pytest.mark.parametrize(
    ("kind", "labels", "dtype"),
    [("yes/no", ["no", "yes"], pl.String), ("0/1", [0, 1], pl.Int64)],
)
def test_binary_predictions_come_back_in_the_targets_labels(tmp_path, kind, labels, dtype):
    """A yes/no CSV target is predicted as "yes"/"no" and a 0/1 target as 0/1 by predict,
    /predict and in the log; _score is the positive class's probability."""
    data = tmp_path / "data.csv"
    generated(kind).write_csv(data)
    got = scored_everywhere(data, tmp_path, "y")
    bundle, batch, body, log = got["bundle"], got["batch"], got["body"], got["log"]

    assert list(bundle.classes) == labels and bundle.positive_label == labels[1]
    assert batch["_prediction"].dtype == dtype
    assert set(batch["_prediction"].to_list()) == set(labels)
    # comparable with the truth (the output keeps the input's columns as read: text)
    assert (batch["_prediction"].cast(pl.String) == batch["y"]).mean() > 0.7
    assert body["classes"] == labels
    assert set(body["predictions"]) <= set(labels)
    assert all(type(p) is type(labels[0]) for p in body["predictions"])
    assert body["predictions"] == batch["_prediction"].head(20).to_list()
    served_score = [p[1] for p in body["probabilities"]]  # the positive class is second
    assert np.allclose(served_score, batch["_score"].head(20).to_numpy())
    assert log["_prediction"].dtype == dtype
    assert set(log["_prediction"].to_list()) <= set(labels)


def test_multiclass_predictions_are_the_species_names(tmp_path):
    """Penguin species are predicted, served and logged as their names."""
    data = tmp_path / "penguins.csv"
    penguins().write_csv(data)
    got = scored_everywhere(data, tmp_path, "species")
    species = ["Adelie", "Chinstrap", "Gentoo"]
    assert got["body"]["classes"] == species
    assert set(got["body"]["predictions"]) <= set(species)
    assert (got["batch"]["_prediction"] == got["batch"]["species"]).mean() > 0.9
    assert got["log"]["_prediction"].dtype == pl.String
    assert set(got["log"]["_prediction"].to_list()) <= set(species)


def test_a_boolean_target_still_predicts_booleans(tmp_path):
    """A target held as booleans (Parquet) keeps working, with True/False labels."""
    data = tmp_path / "data.parquet"
    generated("bool").write_parquet(data)
    got = scored_everywhere(data, tmp_path, "y")
    assert got["bundle"].positive_label is True
    assert got["body"]["classes"] == [False, True]
    assert got["batch"]["_prediction"].dtype == pl.Boolean
    assert got["log"]["_prediction"].dtype == pl.Boolean
