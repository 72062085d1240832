"""The feature pipeline built from a contract."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import SchemaError
from loopml.features import build_features
from loopml.quality import infer_contract, validate


@pytest.fixture
def flights_clean(flights_sample: pl.DataFrame) -> tuple[pl.DataFrame, object]:
    text = flights_sample.filter(pl.col("delayed").is_not_null()).cast(
        {c: pl.String for c in flights_sample.columns}
    )
    contract = infer_contract(text, source="flights", target="delayed")
    return validate(text, contract).clean, contract


COLUMNS = ["month", "sched_dep_time", "carrier", "tailnum", "origin", "distance", "time_hour"]


def test_turns_every_type_into_numbers(flights_clean: tuple) -> None:
    """Numbers, categories, high-cardinality text and datetimes all become finite floats."""
    frame, contract = flights_clean
    ct = build_features(contract, columns=COLUMNS, task="classification")
    X = ct.fit_transform(frame.select(COLUMNS), frame["delayed"].to_numpy())
    assert X.dtype == np.float64 and np.isfinite(X).all()
    names = list(ct.get_feature_names_out())
    assert "datetime__time_hour_hour" in names and "high_cardinality__tailnum" in names


def test_unseen_categories_and_missing_values_at_predict_time(flights_clean: tuple) -> None:
    """A new carrier, a null distance and a null time still transform (serving must not fail)."""
    frame, contract = flights_clean
    ct = build_features(contract, columns=COLUMNS, task="classification")
    ct.fit(frame.select(COLUMNS), frame["delayed"].to_numpy())
    odd = pl.DataFrame({
        "month": [7], "sched_dep_time": [None], "carrier": ["ZZ"], "tailnum": [None],
        "origin": ["JFK"], "distance": [None],
        "time_hour": [datetime(2013, 7, 1, 9, tzinfo=UTC)],
    }, schema=frame.select(COLUMNS).schema)
    X = ct.transform(odd)
    assert np.isfinite(X).all()


def test_clustering_leaves_out_high_cardinality_text(flights_clean: tuple) -> None:
    """Without a target, text with many values cannot be target-encoded and is left out."""
    _, contract = flights_clean
    ct = build_features(contract, columns=COLUMNS, task="clustering")
    used = [c for _, _, cols in ct.transformers for c in cols]
    assert "tailnum" not in used and "carrier" in used


def test_no_columns_is_an_error(flights_clean: tuple) -> None:
    """Excluding every column is a SchemaError with a hint."""
    _, contract = flights_clean
    with pytest.raises(SchemaError):
        build_features(contract, columns=[], task="classification")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "continuous"])
def test_fast_target_encoder_matches_scikit_learn(kind: str) -> None:
    """The dict-based transform gives exactly scikit-learn's numbers, unknowns included."""
    import pickle

    from sklearn.preprocessing import TargetEncoder

    from loopml.features._transformers import FastTargetEncoder

    rng = np.random.default_rng(0)
    X = rng.choice([f"N{i}" for i in range(300)], size=(2000, 2)).astype(object)
    y = {"binary": rng.integers(0, 2, 2000), "multiclass": rng.integers(0, 3, 2000),
         "continuous": rng.normal(size=2000)}[kind]
    ours = FastTargetEncoder().fit(X, y)
    theirs = TargetEncoder().fit(X, y)
    new = np.array([["N1", "unseen"], ["(missing)", "N299"]], dtype=object)
    assert np.array_equal(ours.transform(new), theirs.transform(new))
    assert np.array_equal(pickle.loads(pickle.dumps(ours)).transform(X), theirs.transform(X))
