"""Whole loops through the command line on real data: init, run, models, predict, serve,
monitor, promote."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopml.lake import Lake
from loopml.pipeline import Project

pytestmark = pytest.mark.slow


def test_classification_loop(cli, penguins_csv: Path, tmp_path: Path) -> None:
    """Penguins: every command works in turn and leaves what it promises on disk."""
    code, out = cli("init", "penguins.csv", "--target", "species")
    assert code == 0, out
    assert (tmp_path / "loopml.yaml").exists() and (tmp_path / "contracts/penguins.yaml").exists()

    code, out = cli("run", "--time-budget", "6")
    assert code == 0, out
    assert "344 rows in, 344 accepted, 0 quarantined" in out
    assert re.search(r"\d+ tried in", out) and "champion" in out
    reports = re.findall(r"(/\S+\.html)", out)
    assert {Path(p).name for p in reports} >= {"profile.html", "model.html"}
    assert all("data-figure" in Path(p).read_text(encoding="utf-8") for p in reports)
    # the pages share the project's one plotly.js instead of inlining it
    [shared] = (tmp_path / ".loopml" / "reports").glob("plotly-*.min.js")
    assert shared.stat().st_size > 1_000_000
    assert all(f'"../{shared.name}"' in Path(p).read_text(encoding="utf-8") for p in reports)

    code, out = cli("models")
    assert code == 0 and "champion" in out and "roc_auc" in out

    code, out = cli("predict", "penguins.csv", "-o", "scored.parquet")
    assert code == 0, out
    scored = pl.read_parquet(tmp_path / "scored.parquet")
    assert scored.height == 344 and scored["_prediction"].null_count() == 0
    assert (scored["_prediction"] == scored["species"]).mean() > 0.9

    odd = pl.read_csv(penguins_csv, infer_schema=False).head(3).with_columns(
        bill_length_mm=pl.Series(["41.0", None, "long"]), island=pl.Series(["Atlantis"] * 3)
    )
    odd.write_csv(tmp_path / "odd.csv")
    code, out = cli("predict", "odd.csv", "-o", "odd_scored.csv")
    assert code == 0, out
    odd_scored = pl.read_csv(tmp_path / "odd_scored.csv")
    assert odd_scored["_prediction"].null_count() == 1  # missing and unseen values are scored
    assert odd_scored["_reasons"].to_list()[2] == "bill_length_mm: 'long' is not a number"

    project = Project(tmp_path)
    with project, TestClient(project.app()) as client:
        ok = client.post("/predict", json={"records": [
            {"island": "Biscoe", "bill_length_mm": 48.0, "bill_depth_mm": 15.0,
             "flipper_length_mm": 220, "body_mass_g": 5400, "sex": "male", "year": 2009},
        ] * 50})  # fmt: skip
        assert ok.status_code == 200 and ok.json()["predictions"][0] == "Gentoo"
        missing = client.post("/predict", json={"records": [{"island": "Biscoe"}]})
        assert missing.status_code == 422
        fields = {d["field"] for d in missing.json()["detail"]}
        assert {"bill_length_mm", "body_mass_g"} <= fields
        wrong = client.post("/predict", json={"records": [
            {"island": "Biscoe", "bill_length_mm": "long", "bill_depth_mm": 15.0,
             "flipper_length_mm": 220, "body_mass_g": 5400, "sex": "male", "year": 2009},
        ]})  # fmt: skip
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["field"] == "bill_length_mm"
        assert "'long'" in wrong.json()["detail"][0]["message"]
    log = Lake(tmp_path / ".loopml/lake").read("predictions/" + project.model_name)
    assert log.height == 344 + 2 + 50  # batch files and the request: nothing lost on shutdown

    code, out = cli("monitor")
    assert code == 0, out
    assert "Drift of" in out and re.search(r"/\S+monitor/\S+\.html", out)

    code, out = cli("run", "--time-budget", "3")  # no new data: same table, new version
    assert code == 0 and "no new files" in out
    code, out = cli("promote", project.model_name, "2")
    assert code == 0, out
    with Project(tmp_path) as again:
        assert again.catalog.model_version(again.model_name, "champion").version == 2


def test_regression_with_a_time_split(cli, flights_sample: pl.DataFrame, tmp_path: Path) -> None:
    """Flights: arrival delay in minutes, newest flights as the test set."""
    flights_sample.drop("delayed").write_csv(tmp_path / "flights.csv")
    code, out = cli("init", "flights.csv", "--target", "arr_delay", "--time-column", "time_hour",
                    "-x", "dep_delay", "-x", "arr_time", "-x", "dep_time", "-x", "air_time")
    assert code == 0, out
    assert "regression" in out
    code, out = cli("run", "--time-budget", "5")
    assert code == 0, out
    assert "rmse" in out and "quarantined" in out
    with Project(tmp_path) as project:
        mv = project.models()[0]
        lineage = project.catalog.lineage(mv.name, mv.version)
        assert lineage["run"]["lake_versions"]["clean/flights"] == 0
        assert lineage["run"]["contract_fingerprint"] == project.contract().fingerprint()
        assert lineage["ingests"][0]["rows_in"] == flights_sample.height


def test_clustering(cli, tmp_path: Path) -> None:
    """Iris without labels: clusters chosen by silhouette."""
    from tests.conftest import sklearn_frame

    sklearn_frame("iris").drop("target").write_csv(tmp_path / "iris.csv")
    assert cli("init", "iris.csv")[0] == 0
    code, out = cli("run", "--time-budget", "3")
    assert code == 0, out
    assert "silhouette" in out


def test_catalog_on_postgres(cli, penguins_csv: Path, postgres_url: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same project with its catalog in PostgreSQL (set by environment variable)."""
    monkeypatch.setenv("LOOPML_STORAGE__CATALOG_URL", postgres_url)
    assert cli("init", "penguins.csv", "--target", "sex")[0] == 0
    code, out = cli("run", "--time-budget", "3")
    assert code == 0, out
    code, out = cli("models")
    assert code == 0 and "champion" in out
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from model_versions")).scalar() == 1
        assert conn.execute(sa.text("select status from runs")).scalar() == "finished"
    engine.dispose()


def test_demo(browser, tmp_path: Path) -> None:
    """The demo closes the loop month by month on the flights data: every month is served,
    labels come back a month late, decisions carry evidence, the reports draw in a browser."""
    from loopml.pipeline import demo
    from tests.browser import open_report

    result = demo(tmp_path / "demo", time_budget=3, train_rows=6000, month_rows=300,
                  say=lambda *_: None)
    assert result.replayed == 6 * 300
    assert result.run.evaluation.metrics["roc_auc"] > 0.6
    assert result.run.ingests[0].report.rows_quarantined > 0  # cancelled flights: no arrival
    # the weather is a second source, from PostgreSQL here (a file where it is unreachable)
    assert result.weather_from == "postgresql"
    assert sum(i.report.rows_in for i in result.run.ingests if i.source == "weather") == 26_115
    assert [m.month for m in result.months] == [f"2013-{m:02d}" for m in range(7, 13)]
    assert result.months[0].labels_for is None and result.months[1].labels_for == "2013-07"
    assert all(m.accepted > 250 for m in result.months[1:])
    decisions = [m.cycle.decision for m in result.months if m.cycle.decision is not None]
    assert decisions, "about two months of labels must start a retraining"
    for d in decisions:
        assert [e.name for e in d.evidence] == ["window", "test split"]
        assert all(e.comparison.rows > 0 for e in d.evidence)
    for m in result.months:  # the server follows the champion without a restart
        if m is not result.months[-1]:
            following = result.months[result.months.index(m) + 1]
            assert following.served_by == (m.champion,)
    assert len(result.performance) == 6 and result.performance[-1][2] is not None
    # the last drift is of the version that served December, even when December's cycle
    # promoted a challenger that has served nothing yet
    assert result.drift.version == result.months[-1].served_by[-1]
    for path in [*result.run.reports.values(), str(result.drift_report)]:
        opened = open_report(browser, Path(path))
        assert opened.errors == [] and opened.remote == [] and opened.undrawn == []
        assert len(opened.drawn) > 0
