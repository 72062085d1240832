"""A model trained on cleaned rows scores served rows cleaned the same way: a request written
as the source writes its data gets the answer its cleaned row gets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import loopml
from loopml.core.bundle import load_bundle
from loopml.core.errors import SchemaError
from loopml.serve import predict_frame
from loopml.serve._scoring import Scorer

CLEANING = {
    "repair": {"numbers": True},
    "categories": {"similarity": 0.8},
    "missing": {"amount": {"impute": "median", "value": 7}},
    "outliers": {"amount": {"method": "iqr", "q1": 5, "q3": 15, "k": 1.5, "action": "clip"}},
}  # amount's fences: -10 and 30


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(0)
    n = 600
    amount = rng.uniform(-10, 30, n)
    city = rng.choice(["Paris", "Lyon"], n)
    logit = 0.25 * (amount - 10) + np.where(city == "Paris", 1.0, -1.0)
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame = pl.DataFrame({"amount": amount, "city": city, "label": label})
    model = loopml.fit(frame, target="label", time_budget=3, learners=["linear"])
    folder = model.save(tmp_path_factory.mktemp("model") / "m")
    return replace(load_bundle(folder), cleaning=CLEANING)


DIRTY = pl.DataFrame({"amount": ["1,234.5", None, "12 kg", "4"],
                      "city": [" paris", "LYON", "Pariss", "Lyon"]})
CLEANED = pl.DataFrame({"amount": [30.0, 7.0, 12.0, 4.0],
                        "city": ["Paris", "Lyon", "Paris", "Lyon"]})


def test_served_rows_are_cleaned_as_the_training_rows_were(bundle) -> None:
    """Repaired numbers, one spelling per category, the fixed fill value and the clipped
    outlier: each dirty row scores exactly as its cleaned row."""
    dirty = predict_frame(bundle, DIRTY)
    clean = predict_frame(bundle, CLEANED)
    assert dirty["_score"].to_list() == clean["_score"].to_list()
    assert dirty["_prediction"].to_list() == clean["_prediction"].to_list()
    # the output shows the values as read, not as filled and clipped for the model
    assert dirty["amount"].to_list() == [1234.5, None, 12.0, 4.0]


def test_a_request_frame_is_cleaned_before_scoring(bundle) -> None:
    """The server hands the scorer rows already typed by the request model: spellings,
    missing values and outliers are still cleaned there."""
    scorer = Scorer(bundle)
    typed = pl.DataFrame({"amount": [1234.5, None], "city": [" paris", "LYON"]})
    want = pl.DataFrame({"amount": [30.0, 7.0], "city": ["Paris", "Lyon"]})
    assert scorer.score(typed).scores.tolist() == scorer.score(want).scores.tolist()


def test_without_cleaning_the_same_rows_are_refused_or_scored_otherwise(bundle) -> None:
    """The settings are what makes the difference: without them the repaired numbers do not
    read, and an outlier scores differently from its clipped value."""
    plain = replace(bundle, cleaning=None)
    with pytest.raises(SchemaError, match="1,234.5"):
        predict_frame(plain, DIRTY)
    far = pl.DataFrame({"amount": [1234.5], "city": ["Paris"]})
    near = pl.DataFrame({"amount": [30.0], "city": ["Paris"]})
    assert predict_frame(plain, far)["_score"][0] != predict_frame(plain, near)["_score"][0]


def test_the_settings_are_kept_with_the_bundle(bundle, tmp_path: Path) -> None:
    from loopml.core.bundle import save_bundle

    folder = save_bundle(bundle, tmp_path / "b")
    assert load_bundle(folder).cleaning == CLEANING
