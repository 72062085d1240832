"""Cluster profiles: sizes and the features that set each cluster apart."""

from __future__ import annotations

import json
from dataclasses import asdict

import polars as pl
import pytest

from loopml.core.bundle import evaluation_from_dict
from loopml.evaluate import evaluate
from loopml.evaluate._clusters import cluster_profiles
from tests.conftest import penguins_frame
from tests.unit.evaluate.test_evaluate import fitted

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
            "sex"]


def test_penguin_species_as_clusters_are_told_apart_by_what_sets_them_apart() -> None:
    """Taking the species as clusters: Gentoo are the long-flippered, shallow-billed Biscoe
    penguins, Chinstrap live on Dream; sizes and numbers agree with the data."""
    frame = penguins_frame()
    profiles = cluster_profiles(frame, frame["species"].to_numpy(), columns=FEATURES)
    by_name = {p.cluster: p for p in profiles}
    assert [p.cluster for p in profiles] == ["Adelie", "Chinstrap", "Gentoo"]
    assert [p.rows for p in profiles] == [152, 68, 124]
    assert sum(p.share for p in profiles) == pytest.approx(1, abs=1e-3)
    gentoo = {t.feature: t for t in by_name["Gentoo"].traits}
    assert gentoo["flipper_length_mm"].effect > 1 and gentoo["bill_depth_mm"].effect < -1
    mean = frame.filter(pl.col("species") == "Gentoo")["flipper_length_mm"].mean()
    assert gentoo["flipper_length_mm"].cluster == pytest.approx(mean, rel=1e-3)
    assert gentoo["island"].value == "Biscoe" and gentoo["island"].cluster == 1.0
    traits = by_name["Chinstrap"].traits
    assert {t.feature: t.value for t in traits if t.value}.get("island") == "Dream"
    assert [abs(t.effect) for t in traits] == sorted((abs(t.effect) for t in traits),
                                                     reverse=True)
    assert all(abs(t.effect) >= 0.25 for p in profiles for t in p.traits)


def test_evaluate_profiles_clusters_on_the_test_rows_and_the_bundle_keeps_them() -> None:
    """evaluate() of a clustering gives one profile per predicted cluster (sizes as
    cluster_sizes) over the model's own input columns; it survives the bundle's JSON."""
    model, test, _ = fitted("iris", "clustering", "kmeans")
    e = evaluate(model, test.with_columns(pl.lit("x").alias("other")), task="clustering",
                 target=None)
    assert tuple(p.rows for p in e.cluster_profiles) == e.cluster_sizes
    assert {t.feature for p in e.cluster_profiles for t in p.traits} <= set(test.columns)
    assert all(p.traits for p in e.cluster_profiles)
    assert evaluation_from_dict(json.loads(json.dumps(asdict(e)))) == e
