"""The demo's second source: the hourly weather from the local PostgreSQL (loaded there
once), or from a file when PostgreSQL cannot be reached, saying so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopml.pipeline import Project
from loopml.pipeline._demo import WEATHER_TABLE, add_weather

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _project(tmp_path: Path) -> Project:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.csv").write_text("x,y\n1,a\n2,b\n3,a\n4,b\n")
    return Project.init(data / "f.csv", target="y", directory=tmp_path, name="p")


@pytest.mark.services
def test_weather_comes_from_postgresql_and_is_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DEMO_POSTGRES_URL", PG_URL)
    project = _project(tmp_path)
    said: list[str] = []
    assert add_weather(project, tmp_path / "data", say=said.append) == "postgresql"
    assert WEATHER_TABLE in said[0] and "time_hour" in said[0]
    assert add_weather(Project(project.file), tmp_path / "data", say=said.append) == "postgresql"
    assert "already in" in said[1]  # loaded once
    project = Project(project.file)
    weather = project.config.source("weather")
    assert weather.kind == "sql" and weather.watermark == "time_hour"
    assert [s.name for s in project.config.sources] == ["f", "weather"]  # added once
    assert project.contract("weather").column("time_hour").type == "datetime"
    with project:
        results = project.ingest("weather")
        assert sum(r.report.rows_in for r in results) == 26_115
        assert sum(r.report.rows_quarantined for r in results) == 0
        assert project.ingest("weather") == []  # incremental: nothing new


def test_weather_falls_back_to_a_file_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DEMO_POSTGRES_URL", "postgresql://postgres@127.0.0.1:1/test")
    project = _project(tmp_path)
    said: list[str] = []
    assert add_weather(project, tmp_path / "data", say=said.append) == "file"
    assert "not reachable" in said[0] and "weather.parquet" in said[0]
    project = Project(project.file)
    assert project.config.source("weather").kind == "file"
    with project:
        results = project.ingest("weather")
    assert sum(r.report.rows_in for r in results) == 26_115
