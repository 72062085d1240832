"""'loopml lake ls|history|show|sql|optimize' on a small project's lake."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from loopml.cli import app


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose lake has clean/flights at versions 0 and 1 (3 then 5 rows)."""
    from loopml.pipeline import Project

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "flights.csv"
    pl.DataFrame({"origin": ["JFK", "LGA", "JFK"], "delayed": [True, False, True]}).write_csv(data)
    Project.init(data, target="delayed", directory=tmp_path)
    lake = Project.find(tmp_path).lake
    lake.append("clean/flights", pl.DataFrame({"id": [1, 2, 3], "origin": ["JFK", "LGA", "JFK"]}))
    time.sleep(0.01)
    lake.append("clean/flights", pl.DataFrame({"id": [4, 5], "origin": ["EWR", "JFK"]}))
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_help_lists_the_lake_commands() -> None:
    """'loopml lake --help' names every lake command."""
    code, out = run("lake", "--help")
    assert code == 0
    for command in ("ls", "history", "show", "sql", "optimize"):
        assert f" {command} " in out


def test_ls_lists_tables_with_version_and_rows(project: Path) -> None:
    """ls --json gives each table's name, SQL name, version and row count."""
    code, out = run("lake", "ls", "--json")
    assert code == 0, out
    assert json.loads(out) == [{"table": "clean/flights", "sql_name": "clean_flights",
                                "version": 1, "rows": 5, "partition_by": []}]
    code, out = run("lake", "ls")
    assert code == 0 and "clean/flights" in out


def test_history_lists_commits_newest_first(project: Path) -> None:
    """history --json gives version, ISO time, operation and rows added per commit, newest
    first (the first commit made the table with its rows)."""
    code, out = run("lake", "history", "clean_flights", "--json")
    assert code == 0, out
    commits = json.loads(out)
    assert [c["version"] for c in commits] == [1, 0]
    assert [c["operation"] for c in commits] == ["WRITE", "CREATE TABLE"]
    assert all(c["metrics"]["num_added_rows"] > 0 for c in commits)
    assert datetime.fromisoformat(commits[0]["time"]) >= datetime.fromisoformat(commits[1]["time"])
    code, out = run("lake", "history", "clean/flights", "--limit", "1", "--json")
    assert [c["version"] for c in json.loads(out)] == [1]


def test_show_as_of_a_version_or_a_time(project: Path) -> None:
    """show reads the latest, a version number, or the version at a time; --limit cuts rows."""
    code, out = run("lake", "show", "clean/flights", "--json", "--limit", "2")
    shown = json.loads(out)
    assert code == 0 and (shown["version"], shown["rows"], len(shown["data"])) == (1, 5, 2)
    assert shown["columns"] == ["id", "origin"]
    code, out = run("lake", "show", "clean/flights", "--as-of", "0", "--json")
    assert json.loads(out)["rows"] == 3
    _, out = run("lake", "history", "clean/flights", "--json")
    first = json.loads(out)[-1]["time"]
    code, out = run("lake", "show", "clean/flights", "--as-of", first, "--json")
    assert code == 0 and (json.loads(out)["version"], json.loads(out)["rows"]) == (0, 3)
    code, out = run("lake", "show", "clean/flights")
    assert code == 0 and "EWR" in out


def test_show_before_the_first_version_and_unknown_tables_fail_clearly(project: Path) -> None:
    """A time before the table existed, a bad version and an unknown table exit 1, no trace."""
    _, out = run("lake", "history", "clean/flights", "--json")
    before = datetime.fromisoformat(json.loads(out)[-1]["time"]) - timedelta(hours=1)
    code, out = run("lake", "show", "clean/flights", "--as-of", before.isoformat())
    assert code == 1 and "did not exist yet" in out and "Traceback" not in out
    code, out = run("lake", "show", "clean/flights", "--as-of", "7")
    assert code == 1 and "versions run from 0 to 1" in out
    code, out = run("lake", "show", "clean/flight")
    assert code == 1 and "Did you mean 'clean/flights'" in out
    code, out = run("lake", "history", "nope")
    assert code == 1 and "clean/flights" in out


def test_sql_queries_views_and_reports_bad_sql(project: Path) -> None:
    """sql --json returns columns and rows; a bad query shows DuckDB's first line and the views."""
    code, out = run("lake", "sql", "--json",
                    "SELECT origin, count(*) AS n FROM clean_flights GROUP BY 1 ORDER BY 1")
    assert code == 0, out
    assert json.loads(out) == {"columns": ["origin", "n"], "rows": [
        {"origin": "EWR", "n": 1}, {"origin": "JFK", "n": 3}, {"origin": "LGA", "n": 1}]}
    code, out = run("lake", "sql", "SELECT sum(id) AS s FROM clean_flights", "--json")
    assert json.loads(out)["rows"] == [{"s": 15}]  # DuckDB's HUGEINT sum as a JSON number
    code, out = run("lake", "sql", "SELEKT 1")
    assert code == 1 and "syntax error" in out and "clean_flights" in out
    assert "Traceback" not in out


def test_optimize_compacts_and_records_an_event(project: Path) -> None:
    """optimize --json gives the counts; the catalog has an optimize event with them."""
    code, out = run("lake", "optimize", "clean/flights", "--retention-hours", "0", "--json")
    assert code == 0, out
    [done] = json.loads(out)
    assert (done["table"], done["files_removed"], done["files_added"]) == ("clean/flights", 2, 1)
    assert done["files_vacuumed"] == 2 and done["retention_hours"] == 0
    code, out = run("events", "--kind", "optimize", "--json")
    [event] = json.loads(out)
    assert event["subject"] == "clean/flights" and event["payload"]["files_removed"] == 2
    code, out = run("lake", "show", "clean/flights", "--json")
    assert json.loads(out)["rows"] == 5
    code, out = run("lake", "optimize")  # every table, default retention (168 h)
    assert code == 0 and "clean/flights" in out and "168 h" in out
    code, out = run("lake", "optimize", "clean/nope")
    assert code == 1 and "clean/flights" in out


def test_optimize_follows_the_configured_retention(project: Path) -> None:
    """storage.retention_hours in loopml.yaml is the vacuum's retention by default."""
    import yaml

    file = project / "loopml.yaml"
    config = yaml.safe_load(file.read_text())
    config.setdefault("storage", {})["retention_hours"] = 0
    file.write_text(yaml.safe_dump(config))
    code, out = run("lake", "optimize", "--json")
    assert code == 0, out
    [done] = json.loads(out)
    assert done["retention_hours"] == 0 and done["files_vacuumed"] == 2
