"""Reports open in a real browser, offline, without errors, and draw every plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.reports import write_report

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# a plot counts as drawn when its SVG holds a trace: bars, lines, points or a heatmap image
DRAWN = """() => Array.from(document.querySelectorAll('[data-figure]')).map(el => ({
    id: el.id,
    svg: el.classList.contains('js-plotly-plot') && !!el.querySelector('.main-svg'),
    marks: el.querySelectorAll('.trace .point, .trace path.js-line, .hm image').length,
}))"""


@pytest.fixture(scope="module")
def browser():
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
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    remote: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else (remote.append(route.request.url), route.abort()))  # fmt: skip
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.body.dataset.plotsReady !== undefined", timeout=30_000)
    drawn = page.evaluate(DRAWN)
    page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
    page.close()

    assert errors == [] and remote == []
    assert len(drawn) == _expected(name, records)
    assert [d["id"] for d in drawn if not d["svg"]] == []
    assert [d["id"] for d in drawn if d["marks"] == 0] == []
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
