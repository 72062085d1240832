"""Creating a project: task inference and the errors a new user meets."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.core.config import ProjectConfig
from loopml.core.contract import Contract
from loopml.core.errors import ConfigError, EmptyDataError, NotAProjectError, TargetError
from loopml.pipeline import Project


def test_init_writes_config_and_contract(penguins_csv: Path) -> None:
    """init writes loopml.yaml and contracts/<source>.yaml with the inferred task."""
    project = Project.init(penguins_csv, target="species", directory=penguins_csv.parent)
    cfg = ProjectConfig.load(penguins_csv.parent / "loopml.yaml", env={})
    assert cfg.problem.task == "classification" and cfg.problem.target == "species"
    assert cfg.sources[0].path == "penguins.csv"  # relative to the project
    contract = Contract.load(penguins_csv.parent / "contracts" / "penguins.yaml")
    assert contract.column("species").allowed == ("Adelie", "Chinstrap", "Gentoo")
    assert project.contract() == contract


def test_task_is_inferred_from_the_target(penguins_csv: Path) -> None:
    """A numeric target with many values is regression; no target is clustering."""
    d = penguins_csv.parent
    assert Project.init(penguins_csv, target="body_mass_g", directory=d / "a").config.problem.task == "regression"
    assert Project.init(penguins_csv, directory=d / "b").config.problem.task == "clustering"


def test_unknown_target_lists_closest_columns(penguins_csv: Path) -> None:
    """A misspelt target names the closest columns."""
    with pytest.raises(TargetError) as info:
        Project.init(penguins_csv, target="specie", directory=penguins_csv.parent)
    assert "Did you mean 'species'" in info.value.message


def test_regression_needs_a_numeric_target(penguins_csv: Path) -> None:
    """Regression on a text target says why and suggests classification."""
    with pytest.raises(TargetError) as info:
        Project.init(penguins_csv, target="island", task="regression",
                     directory=penguins_csv.parent)
    assert "numeric" in info.value.message and "classification" in (info.value.hint or "")


def test_existing_project_needs_force(penguins_csv: Path) -> None:
    """init refuses to overwrite a project unless forced."""
    Project.init(penguins_csv, target="species", directory=penguins_csv.parent)
    with pytest.raises(ConfigError):
        Project.init(penguins_csv, target="species", directory=penguins_csv.parent)
    Project.init(penguins_csv, target="sex", directory=penguins_csv.parent, force=True)


def test_empty_file(tmp_path: Path) -> None:
    """An empty data file is an EmptyDataError."""
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(EmptyDataError):
        Project.init(tmp_path / "x.csv", target="y", directory=tmp_path)


def test_time_column_must_hold_times(tmp_path: Path) -> None:
    """A text time column is refused with a hint."""
    pl.DataFrame({"when": ["a", "b"] * 10, "y": [1.5, 2.5] * 10}).write_csv(tmp_path / "d.csv")
    with pytest.raises(ConfigError) as info:
        Project.init(tmp_path / "d.csv", target="y", time_column="when", directory=tmp_path)
    assert "timestamps" in (info.value.hint or "")


def test_find_outside_a_project(tmp_path: Path) -> None:
    """Looking for a project where there is none says how to create one."""
    with pytest.raises(NotAProjectError) as info:
        Project.find(tmp_path)
    assert "loopml init" in (info.value.hint or "")


def test_ragged_lines_do_not_stop_init_and_go_to_quarantine_at_ingest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A CSV line with too many fields is named at init (the contract comes from the other
    lines) and set aside with its line number by the ingest."""
    data = tmp_path / "d.csv"
    data.write_text("id,x,y\n1,2.5,a\n2,3.5,b\n3,4,c,extra\n4,5,a\n")
    with caplog.at_level("WARNING", logger="loopml"):
        Project.init(data, target="y", directory=tmp_path / "p")
    assert "line 4 has 4 fields" in caplog.text
    with Project(tmp_path / "p") as p:
        [result] = p.ingest()
        quarantined = p.lake.read("quarantine/d")
    assert p.contract("d").column("x").type == "float"
    assert result.report.rows_accepted == 3
    assert quarantined["_source_row"].to_list() == [4]
