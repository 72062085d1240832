"""The monitoring report: windows over time with drift, predictions, realised against
estimated performance, and the loop's events on the same time axis."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from loopml.core.records import WindowReport
from loopml.reports import ReportError, render, write_report

WEEK = timedelta(days=7)
START = datetime(2013, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def windows(drift) -> list[WindowReport]:
    """Eight weekly windows of July's flights: performance decays, then a new version
    recovers; the drift of each week is the July drift, scaled down for the early weeks."""
    out = []
    for i in range(8):
        start = START + i * WEEK
        scale = min(1.0, 0.25 + i / 4)
        features = tuple(replace(f, psi=round(f.psi * scale, 6)) for f in drift.features)
        d = replace(drift, window_start=start, window_end=start + WEEK, features=features)
        realised = 0.74 - 0.03 * i if i < 5 else 0.75
        labelled = 0 if i == 7 else 4000
        out.append(WindowReport(
            model="flights", version=3 if i < 5 else 4, start=start, end=start + WEEK,
            rows=5000 + 10 * i, drift=d, labelled_rows=labelled, metric="roc_auc",
            realised={} if i == 7 else {"roc_auc": realised, "accuracy": 0.8},
            estimated={"roc_auc": 0.73 - 0.01 * i},
            estimate_gap=None if i == 7 else round(abs(0.73 - 0.01 * i - realised), 6),
            estimate_disagrees=i in (3, 4), status="alert" if i in (3, 4) else d.status,
            performance_status="alert" if i in (3, 4) else "ok", reference_score=0.75,
            reasons=("realised roc_auc 0.65 is below the reference 0.75 by more than 0.05",)
            if i in (3, 4) else (),
        ))  # fmt: skip
    return out


EVENTS = [
    {"at": START + 4 * WEEK + timedelta(hours=2), "kind": "alert", "subject": "flights",
     "payload": {"reason": "realised roc_auc below the reference"}},
    {"at": START + 4 * WEEK + timedelta(hours=3), "kind": "retrain", "subject": "flights",
     "payload": {"version": 4}},
    {"at": START + 5 * WEEK, "kind": "promote", "subject": "flights",
     "payload": {"reason": "challenger v4 wins by 0.04 (95% interval 0.02 to 0.06)"}},
    {"at": (START + 6 * WEEK).isoformat(), "kind": "rollback", "subject": "flights",
     "payload": {"reason": "manual <rollback> & check"}},
]  # fmt: skip


def figures(html: str) -> list[dict]:
    match = re.search(r'<script type="application/json" id="loopml-figures">(.*?)</script>',
                      html, re.S)  # fmt: skip
    assert match
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_monitoring_report_is_written_with_every_plot_and_its_data(windows, tmp_path):
    """One self-contained file: performance, drift heatmap and prediction distribution."""
    path = write_report(windows, tmp_path / "monitoring" / "flights.html", events=EVENTS)
    html = path.read_text()
    assert html.startswith("<!doctype html>") and 'data-report="monitoring"' in html
    assert html.count("Plotly.newPlot") == 1
    figs = figures(html)
    assert len(figs) == 3
    performance, heat, predictions = figs

    names = [t.get("name") for t in performance["data"]]
    assert names[:3] == ["realised", "estimated", "reference (test split)"]
    assert performance["data"][0]["y"][:5] == pytest.approx([0.74, 0.71, 0.68, 0.65, 0.62])
    assert performance["data"][0]["y"][7] is None  # no labels yet in the newest week
    assert performance["data"][1]["y"] == pytest.approx([0.73 - 0.01 * i for i in range(8)])

    assert heat["data"][0]["type"] == "heatmap"
    assert set(heat["data"][0]["y"]) == {f.name for f in windows[0].drift.features} | {
        "_prediction"
    }
    assert len(heat["data"][0]["x"]) == 8

    assert all(t["type"] == "bar" for t in predictions["data"])
    assert [t["name"] for t in predictions["data"]] == list(windows[0].drift.prediction.labels)
    assert len(predictions["data"][0]["y"]) == 8


def test_events_are_marked_on_every_time_axis_and_listed(windows):
    """Each event is a vertical line on all three plots and a row in the events table."""
    html = render(windows, events=EVENTS)
    for fig in figures(html):
        shapes = fig["layout"].get("shapes", [])
        kinds = [a["text"] for a in fig["layout"].get("annotations", []) if a["text"] in
                 ("alert", "retrain", "promote", "rollback")]  # fmt: skip
        assert len(shapes) >= 4 and kinds == ["alert", "retrain", "promote", "rollback"]
    assert "challenger v4 wins by 0.04" in html and "version 4" in html
    assert "manual &lt;rollback&gt; &amp; check" in html  # escaped
    assert "realised roc_auc 0.65 is below the reference" in html


def test_windows_render_in_time_order_and_a_single_window_works(windows):
    """Windows given out of order are plotted oldest first; one window alone renders."""
    figs = figures(render(list(reversed(windows))))
    xs = figs[0]["data"][0]["x"]
    assert xs == sorted(xs)
    one = render(windows[0])
    assert "Monitoring of flights" in one and "No retrain, promotion" in one


def test_windows_without_drift_or_metric_still_render():
    """Small windows (no drift) and a clustering model (no metric) give notes, not errors."""
    bare = [WindowReport(model="m", version=1, start=START + i * WEEK,
                         end=START + (i + 1) * WEEK, rows=20, drift=None)
            for i in range(3)]  # fmt: skip
    html = render(bare, events=[{"at": None, "kind": "monitor", "subject": "m", "payload": {}}])
    assert figures(html) == []
    assert "No window had enough rows to measure drift" in html


def test_events_need_windows_and_empty_lists_are_refused(drift):
    """Events with another record, or nothing to render, is a ReportError."""
    with pytest.raises(ReportError, match="Events go with monitoring windows"):
        render(drift, events=EVENTS)
    with pytest.raises(ReportError):
        render([])


def test_rendering_leaves_the_windows_unchanged(windows):
    """Rendering reads the records only."""
    before = [replace(w) for w in windows]
    render(windows, events=EVENTS)
    assert windows == before


@pytest.mark.browser
def test_monitoring_report_opens_offline_and_draws_every_plot(windows, browser, tmp_path):
    """In headless Chromium: no script error, no network request, all three plots drawn."""
    from tests.browser import open_report

    path = write_report(windows, tmp_path / "monitoring.html", events=EVENTS)
    opened = open_report(browser, path, screenshot=tmp_path / "monitoring.png")
    assert opened.errors == [] and opened.remote == []
    assert len(opened.drawn) == 3 and opened.undrawn == []
