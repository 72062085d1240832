"""Train / validation / test splits."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.core.errors import TrainingError
from loopml.train import split


def test_time_split_never_mixes_moments(flights_sample: pl.DataFrame) -> None:
    """With a time column, every test row is later than every train and validation row."""
    s = split(flights_sample, target="arr_delay", task="regression", time_column="time_hour")
    assert s.strategy == "time"
    assert s.train["time_hour"].max() < s.valid["time_hour"].min()
    assert s.valid["time_hour"].max() < s.test["time_hour"].min()
    assert s.train.height + s.valid.height + s.test.height == flights_sample.height


def test_stratified_split_keeps_class_balance(flights_sample: pl.DataFrame) -> None:
    """Stratification keeps each split's positive rate close to the whole's."""
    frame = flights_sample.filter(pl.col("delayed").is_not_null())
    s = split(frame, target="delayed", task="classification", seed=3)
    rate = frame["delayed"].mean()
    for part in (s.train, s.valid, s.test):
        assert abs(part["delayed"].mean() - rate) < 0.01  # type: ignore[operator]
    assert s.strategy == "stratified"


def test_splits_are_disjoint_and_reproducible(flights_sample: pl.DataFrame) -> None:
    """No row is in two splits, and the same seed gives the same split."""
    key = ["flight", "time_hour", "carrier", "origin"]
    a = split(flights_sample, target="distance", task="regression", seed=5)
    b = split(flights_sample, target="distance", task="regression", seed=5)
    assert a.test.equals(b.test)
    assert a.train.join(a.test, on=key, how="inner").height == 0


def test_too_few_rows() -> None:
    """A handful of rows cannot be split three ways: TrainingError."""
    with pytest.raises(TrainingError):
        split(pl.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}), target="y", task="classification")
