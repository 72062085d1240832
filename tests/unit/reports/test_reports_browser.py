"""Reports open in a real browser, offline, without errors, and draw every plot."""

from __future__ import annotations

import pytest

from loopml.reports import write_report
from tests.browser import open_report

pytestmark = pytest.mark.browser


def _expected(name: str, records: dict) -> int:
    """How many figures each report must draw, derived from its record."""
    record = records[name]
    if name == "profile":
        relations = sum(1 for c in record.columns if c.target_relation)
        return 4 + len(record.columns) + relations
    if name == "drift":
        return 2 + len(record.features)
    return {"classification": 5, "regression": 2, "clustering": 1, "validation": 2}[name]


@pytest.fixture(scope="module")
def records(flights_profile, classification, regression, clustering, drift, validation):
    return {
        "profile": flights_profile, "classification": classification[0],
        "regression": regression, "clustering": clustering, "drift": drift,
        "validation": validation, "leaderboard": classification[1],
    }  # fmt: skip


@pytest.mark.parametrize(
    "name", ["profile", "classification", "regression", "clustering", "drift", "validation"]
)
def test_report_opens_offline_without_errors_and_draws_every_plot(
    name, records, browser, tmp_path
):
    """Each report loads from disk with no network, no script error, and all plots drawn."""
    kwargs = {"leaderboard": records["leaderboard"]} if name == "classification" else {}
    path = write_report(records[name], tmp_path / f"{name}.html", **kwargs)
    opened = open_report(browser, path, screenshot=tmp_path / f"{name}.png")

    assert opened.errors == [] and opened.remote == []
    assert len(opened.drawn) == _expected(name, records)
    assert opened.undrawn == []
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_model_report_with_the_frontier_draws_every_plot(classification, selection, browser,
                                                         tmp_path):
    """The leaderboard of a portfolio search (frontier, ensemble) draws in a real browser."""
    path = write_report(classification[0], tmp_path / "model.html", leaderboard=selection)
    opened = open_report(browser, path, screenshot=tmp_path / "model.png")
    assert opened.errors == [] and opened.remote == []
    assert len(opened.drawn) == 5 and opened.undrawn == []
