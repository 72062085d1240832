"""Rendering every report record to one self-contained HTML page."""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest
from plotly.offline import get_plotlyjs

from loopml.core.errors import LoopmlError
from loopml.core.records import ValidationReport
from loopml.explore import profile
from loopml.reports import ReportError, render, write_report
from tests.unit.reports.conftest import eda_figures

PLOTLY_JS = get_plotlyjs()


def _outside_plotly(html: str) -> str:
    return html.replace(PLOTLY_JS, "")


def _figures(html: str) -> int:
    return html.count("data-figure")


@pytest.fixture(scope="module")
def pages(flights_profile, classification, regression, clustering, drift, validation):
    evaluation, board = classification
    return {
        "profile": render(flights_profile),
        "classification": render(evaluation, leaderboard=board),
        "regression": render(regression),
        "clustering": render(clustering),
        "leaderboard": render(board),
        "drift": render(drift),
        "validation": render(validation),
    }


def test_every_report_inlines_plotly_once_and_loads_nothing_from_the_network(pages):
    """Each page carries plotly.js exactly once and references no remote file."""
    for name, html in pages.items():
        assert html.startswith("<!doctype html>"), name
        assert html.count(PLOTLY_JS) == 1, name
        rest = _outside_plotly(html)
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest), name
        assert "<script src" not in rest, name
        assert len(html) < 6_000_000, name


def test_profile_report_shows_every_column_warning_and_the_target(pages, flights_profile):
    """The profile page names every column, every warning and the class it shows a rate for."""
    html = pages["profile"]
    for column in flights_profile.columns:
        assert f">{column.name} <span" in html
        for warning in column.warnings:
            assert warning in html
    assert "share of rows whose target is <b>true</b>" in html
    assert "166,158" in html  # rows, formatted
    features = [c for c in flights_profile.columns if c.name != "late"]
    # target, association ranking, missingness, correlations, plus per column plots
    expected = 4 + len(flights_profile.columns) + sum(1 for c in features if c.target_relation)
    expected += eda_figures(flights_profile)  # missingness, matrices, trends
    assert _figures(html) == expected


def test_profile_report_has_label_quality_and_leakage(pages, flights_profile):
    """The profile page has a Label quality and a Leakage section, in the navigation, with
    every suspect's reason and the sample the mislabels were looked for in."""
    html = pages["profile"]
    assert '<section id="labels">' in html and '<section id="leakage">' in html
    assert 'href="#labels">Label quality' in html and 'href="#leakage">Leakage' in html
    assert flights_profile.leakage.suspects
    for suspect in flights_profile.leakage.suspects:
        assert suspect.reason in html
    quality = flights_profile.label_quality
    assert f"random sample of {quality.sampled_rows:,} labelled rows" in html
    assert f">{quality.suspected:,}<" in html


def test_profile_columns_are_ranked_by_association(pages, flights_profile):
    """Column blocks follow the target, then features from most to least associated."""
    html = pages["profile"]
    order = [m.group(1) for m in re.finditer(r'<h3>([^<]+) <span class="kind">', html)]
    assert order[0] == "late"
    scores = {c.name: c.association or 0.0 for c in flights_profile.columns}
    ranked = [scores[n] for n in order[1:]]
    assert ranked == sorted(ranked, reverse=True)
    assert order[1] == "arr_delay"  # the leak comes first


def test_classification_report_has_metrics_curves_and_the_leaderboard(pages, classification):
    """The model page shows the metrics, confusion/ROC/PR/importance plots and every trial."""
    evaluation, board = classification
    html = pages["classification"]
    assert "roc_auc <span class=\"kind\">(primary)</span>" in html
    for name in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Feature importance"):
        assert f'aria-label="{name}"' in html
    assert _figures(html) == 5  # four plots and the search chart
    rows = re.findall(r"<tr( class=\"best\")?><td class=\"n\">(\d+)</td>", html)
    assert len(rows) == len(board.candidates)
    assert [r for r in rows if r[0]] == [(' class="best"', "1")]  # the best model ranks first
    assert ">failed</span>" in html and "max_depth must be positive" in html


def test_regression_and_clustering_reports_show_their_plots(pages):
    """Regression shows predicted-vs-actual and residuals; clustering shows cluster sizes."""
    assert 'aria-label="Predicted vs actual"' in pages["regression"]
    assert 'aria-label="Residuals"' in pages["regression"]
    assert _figures(pages["regression"]) == 2
    assert 'aria-label="Cluster sizes"' in pages["clustering"]
    assert _figures(pages["clustering"]) == 1
    assert "Model search leaderboard" in pages["leaderboard"]


def test_drift_report_ranks_features_and_shows_the_thresholds(pages, drift):
    """Features are listed worst first with their status, next to the warn and alert levels."""
    html = pages["drift"]
    listed = re.findall(r'<tr><td><a href="#drift-\d+">([^<]+)</a>', html)
    assert listed == [f.name for f in sorted(drift.features, key=lambda f: -f.psi)]
    assert listed[0] == "temp"  # January against July
    assert f'<span class="badge big {drift.status}">' in html
    assert "warn 0.1" in html and "alert 0.25" in html
    assert _figures(html) == 2 + len(drift.features)  # PSI bars, prediction, one per feature


def test_validation_report_counts_rows_and_lists_violations(pages, validation):
    """The validation page shows rows in/accepted/quarantined and one row per violation."""
    html = pages["validation"]
    assert f"{validation.rows_in:,}" in html and f"{validation.rows_quarantined:,}" in html
    for v in validation.violations:
        assert f"<td>{v.column}</td><td>{v.rule}</td><td class=\"n\">{v.rows:,}</td>" in html
    assert _figures(html) == 2


def test_user_text_is_escaped_in_tables_and_figures():
    """Column names and values from the data cannot inject markup into the page."""
    evil = "<script>alert(1)</script>"
    frame = pl.DataFrame({evil: ["a", evil, "b"] * 40, "y": [0, 1, 1] * 40})
    html = render(profile(frame, source=evil, target="y", task="classification"))
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<\\/script>" in html  # inside the figure JSON


def test_clean_validation_has_no_violation_plot():
    """A batch that met the contract says so and draws only where the rows went."""
    report = ValidationReport(source="s", contract_fingerprint="ab", rows_in=5,
                              rows_accepted=5, rows_quarantined=0, duplicates=0)
    html = render(report, title="Nightly batch")
    assert "Every row met the contract." in html and "<title>Nightly batch</title>" in html
    assert _figures(html) == 1


def test_unknown_records_and_misplaced_leaderboards_raise_a_report_error(classification):
    """Rendering something that is not a report record fails with a LoopmlError and a hint."""
    evaluation, board = classification
    with pytest.raises(ReportError) as info:
        render({"not": "a record"})
    assert isinstance(info.value, LoopmlError) and isinstance(info.value, TypeError)
    assert "dict" in info.value.message and "Profile" in info.value.hint
    report = ValidationReport(source="s", contract_fingerprint="ab", rows_in=1,
                              rows_accepted=1, rows_quarantined=0, duplicates=0)
    with pytest.raises(ReportError, match="leaderboard goes with an Evaluation"):
        render(report, leaderboard=board)


def test_write_report_creates_the_folder_and_returns_the_path(tmp_path, regression):
    """write_report writes UTF-8 HTML into a new folder and passes the title through."""
    path = write_report(regression, tmp_path / "reports" / "model.html", title="Diabetes ρ")
    assert path == tmp_path / "reports" / "model.html"
    assert "<title>Diabetes ρ</title>" in path.read_text(encoding="utf-8")


def test_rendering_a_29_column_profile_is_repeatable_and_inlines_plotly_once(flights_profile):
    """Rendering the 29-column flights profile twice gives the same page, with plotly.js once."""
    first = render(flights_profile)
    assert render(flights_profile) == first
    assert first.count("* plotly.js v") == 1
    assert all(c.name in first for c in flights_profile.columns)


def test_profile_overview_names_the_positive_class(pages, flights_profile):
    """The overview names the profile's positive class (the one training scores), spelled
    as the class balance and the relationship plots spell it."""
    assert flights_profile.positive_label is True
    assert "classification; positive class: true" in pages["profile"]


def test_records_are_not_changed_by_rendering(drift):
    """Rendering reads a record and leaves it equal to a copy taken before."""
    before = dataclasses.replace(drift)
    render(drift)
    assert drift == before


def test_docstring_examples_run():
    """The examples in the reports docstrings are correct."""
    import doctest

    import loopml.reports
    import loopml.reports._page as page
    import loopml.reports._render as render_module

    for module in (loopml.reports, page, render_module):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_leaderboard_shows_every_candidate_the_frontier_the_ensemble_and_why(
    classification, selection
):
    """The model page lists every candidate with name, family, origin, CV score and spread,
    fit and predict time and ensemble weight; plots the frontier with the winner; shows the
    ensemble's weights, dropped features, calibration, threshold and the reason."""
    evaluation, _ = classification
    html = _outside_plotly(render(evaluation, leaderboard=selection))
    assert _figures(html) == 5  # four evaluation plots and the frontier
    rows = re.findall(r"<tr( class=\"best\")?><td class=\"n\">(\d+)</td><td>([^<]+)</td>", html)
    assert len(rows) == len(selection.candidates)
    assert [r[2] for r in rows if r[0]] == ["ensemble ★ ◆"]  # chosen, and on the frontier
    frontier = [r[2].split(" ")[0] for r in rows if "◆" in r[2]]
    assert sorted(frontier) == sorted(c.name for c in selection.frontier())
    assert "tracking learning time" in html and '"type":"log"' in html.replace(" ", "")
    for name, weight in selection.ensemble:
        assert re.search(rf"<td>{re.escape(name)}</td><td class=\"n\">{weight:.2f}</td>", html)
    assert selection.reason in html and "row_id" in html and "ID-like" in html
    assert "sigmoid" in html and "0.46" in html and "deterministic" in html
    assert "3-fold stratified on 318 rows" in html
    assert "6 ms" in html  # the ensemble's predict time per 1,000 rows
    for c in selection.candidates:
        assert f"<td>{c.origin}</td>" in html
