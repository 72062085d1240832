"""Scoring converts values to the contract's types exactly as ingest validation does."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import SchemaError
from loopml.quality import validate
from loopml.serve import predict_frame
from tests.unit.serve.serve_models import CONTRACT, FEATURES, flights


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("dep_hour", "18.0"),  # a whole number written as a float
        ("weekend", "Yes"),
        ("scheduled", "2024/02/01 18:00:00"),
        ("scheduled", "2024-02-01T20:00:00+02:00"),
        ("day", "2024/02/01"),
        ("distance", " 1200.5 "),
    ],
)
def test_text_that_validation_accepts_is_scored_as_the_same_value(classifier, column, text):
    """A value ingest validation converts is converted to the same value when scored."""
    rows = flights(2, seed=1).select(FEATURES).cast(pl.String).with_columns(
        pl.lit(text).alias(column)
    )
    checked = validate(rows, CONTRACT.select(FEATURES), drop_duplicates=False)
    assert checked.report.rows_quarantined == 0
    scored = predict_frame(classifier, rows)
    assert scored[column].to_list() == checked.clean[column].to_list()
    expected = predict_frame(classifier, checked.clean)
    assert np.allclose(scored["_score"].to_numpy(), expected["_score"].to_numpy())


@pytest.mark.parametrize(("column", "value"), [("dep_hour", "18.5"), ("weekend", "2"),
                                                 ("day", "someday")])
def test_text_that_validation_refuses_is_refused_when_scored(classifier, column, value):
    """A value validation quarantines (never truncated or guessed) is a SchemaError naming
    it when scored."""
    rows = flights(2, seed=1).select(FEATURES).cast(pl.String).with_columns(
        pl.lit(value).alias(column)
    )
    checked = validate(rows, CONTRACT.select(FEATURES), drop_duplicates=False)
    assert checked.report.rows_quarantined == 2
    with pytest.raises(SchemaError) as info:
        predict_frame(classifier, rows)
    assert repr(column) in info.value.message and repr(value) in info.value.message


def test_nan_in_another_float_type_is_a_missing_value(classifier):
    """NaN in a Float32 column is scored as missing (imputed), not refused."""
    rows = flights(3, seed=2).with_columns(
        pl.Series("distance", [float("nan"), 800.0, None], dtype=pl.Float32)
    )
    scored = predict_frame(classifier, rows)
    assert scored["_prediction"].null_count() == 0
    assert scored["distance"].dtype == pl.Float64 and scored["distance"].null_count() == 2
