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


@pytest.fixture(scope="module")
def flights_h1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's January-June flights file (20,000 flights, with the weather and the target
    'delayed' = arrival more than 15 minutes late)."""
    from loopml.pipeline._demo import write_flights

    train, _ = write_flights(tmp_path_factory.mktemp("flights"), train_rows=20_000)
    return train


def test_init_proposes_excluding_the_flights_leaks(flights_h1: Path, tmp_path: Path) -> None:
    """On the real flights, init excludes the arrival and departure delays and the realised
    departure and arrival times, each with a comment saying why, after the user's own
    --exclude; the target, the time column and the schedule stay."""
    from loopml.core.notes import exclude_notes

    project = Project.init(flights_h1, target="delayed", time_column="time_hour",
                           exclude=("air_time",), directory=tmp_path)
    exclude = project.config.problem.exclude
    assert exclude[0] == "air_time"
    assert {"arr_delay", "dep_delay", "dep_time", "arr_time"} <= set(exclude)
    assert not set(exclude) & {"delayed", "time_hour", "sched_dep_time", "sched_arr_time",
                               "carrier", "origin", "dest", "distance"}
    text = (tmp_path / "loopml.yaml").read_text()
    assert "- dep_delay  # after prediction time: equals dep_time - sched_dep_time" in text
    notes = exclude_notes(text)
    assert set(notes) == set(exclude) - {"air_time"}  # the user's own choice needs no reason
    assert "target" in notes["arr_delay"] and "sched_arr_time" in notes["arr_time"]
    loaded = ProjectConfig.load(tmp_path / "loopml.yaml", env={})
    assert loaded.problem.exclude == exclude
    loaded.save(tmp_path / "loopml.yaml")  # saved again (as the demo does): the reasons stay
    assert exclude_notes((tmp_path / "loopml.yaml").read_text()) == notes


def test_init_proposes_ids_and_never_the_target_or_time_column(tmp_path: Path) -> None:
    """An order number is excluded as id-like; a target copy as a leak; the target and a
    unique time column are not, even though they look like ids or determine the target."""
    n = 300
    frame = pl.DataFrame({
        "order_no": range(5000, 5000 + n),
        "placed": [f"2024-01-01T{h % 24:02d}:{h % 60:02d}:00" for h in range(n)],
        "amount": [float((i * 37) % 101) for i in range(n)],
        "churned": ["yes" if (i * 37) % 101 > 50 else "no" for i in range(n)],
        "churned_flag": [1 if (i * 37) % 101 > 50 else 0 for i in range(n)],
    })  # fmt: skip
    frame.write_csv(tmp_path / "orders.csv")
    project = Project.init(tmp_path / "orders.csv", target="churned", time_column="order_no",
                           directory=tmp_path)
    exclude = set(project.config.problem.exclude)
    assert {"churned_flag", "amount"} <= exclude  # both determine the target
    assert not exclude & {"churned", "order_no"}
    project = Project.init(tmp_path / "orders.csv", target="churned", directory=tmp_path,
                           force=True)
    assert "order_no" in project.config.problem.exclude


def test_no_exclusion_is_proposed_that_would_leave_no_feature() -> None:
    """An id-like column is proposed for exclusion, unless it is the only feature: then the
    profile reports it and the user decides (a run needs features)."""
    import polars as pl

    from loopml.pipeline._init import propose_excludes

    alone = pl.DataFrame({"x": range(60), "y": [i % 2 for i in range(60)]})
    assert propose_excludes(alone, target="y", task="classification", time_column=None) == {}
    more = alone.with_columns(z=pl.Series([i % 7 for i in range(60)]))
    assert list(propose_excludes(more, target="y", task="classification",
                                 time_column=None)) == ["x"]
