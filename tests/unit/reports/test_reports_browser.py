"""Reports open in a real browser, offline, without errors, and draw every plot."""

from __future__ import annotations

import pytest

from loopml.reports import write_report
from tests.browser import open_report
from tests.unit.reports.conftest import eda_figures

pytestmark = pytest.mark.browser


def _expected(name: str, records: dict) -> int:
    """How many figures each report must draw, derived from its record."""
    record = records[name]
    if name == "profile":
        relations = sum(1 for c in record.columns if c.target_relation)
        return 4 + len(record.columns) + relations + eda_figures(record)
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


def test_reports_share_one_plotly_copy_and_draw_offline_from_a_run_folder(
    flights_profile, validation, browser, tmp_path
):
    """Two reports in a run folder load the one plotly.js of the reports folder by a
    relative path: neither page embeds it, and both draw every plot with the network off."""
    import dataclasses

    from loopml.core.records import QuarantineSummary

    held = QuarantineSummary(table="quarantine/flights", version=3, rows=1_234,
                             by_reason=(("type", 1_000), ("range", 234)))
    record = dataclasses.replace(flights_profile, quarantine=held)
    paths = [write_report(record, tmp_path / "run-1" / "profile.html", assets=tmp_path),
             write_report(validation, tmp_path / "run-1" / "validation.html", assets=tmp_path)]
    shared = list(tmp_path.glob("plotly-*.min.js"))
    assert len(shared) == 1 and not list((tmp_path / "run-1").glob("*.js"))
    for path in paths:
        html = path.read_text(encoding="utf-8")
        assert f'"../{shared[0].name}"' in html and "Plotly.newPlot" in html
        assert path.stat().st_size < shared[0].stat().st_size / 10
        opened = open_report(browser, path)
        assert opened.errors == [] and opened.remote == []
        assert opened.undrawn == [] and len(opened.drawn) >= 2
    assert "quarantine/flights@v3" in paths[0].read_text(encoding="utf-8")


def test_a_report_without_its_plotly_copy_says_so_instead_of_failing_silently(
    validation, browser, tmp_path
):
    """With the shared plotly.js deleted, the page tells the reader what is missing."""
    path = write_report(validation, tmp_path / "validation.html")
    for script in tmp_path.glob("plotly-*.min.js"):
        script.unlink()
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else route.abort())  # fmt: skip
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.body.dataset.plotsReady !== undefined", timeout=60_000)
    assert page.evaluate("document.body.dataset.plotsReady") == "0"
    assert "The plots need plotly.js" in page.inner_text("body")
    page.close()
