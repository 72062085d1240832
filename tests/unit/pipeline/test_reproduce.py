"""``reproduce``: a model rebuilt from its run's recorded lake version, contract, config and
seed predicts its test split exactly as the original does, in deterministic mode, even after
the clean table has grown; a wall-clock run says it was not deterministic.

The projects train the linear learner alone with a trial count the budget always completes,
so the search is the same on a busy machine too; ``training.deterministic`` makes the search
count trials instead of reading the clock for every learner.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from loopml.core.errors import RegistryError
from loopml.pipeline import Project

pytestmark = pytest.mark.slow

TRAINING = {"learners": ["linear"], "time_budget_s": 10, "max_trials": 4, "cv_folds": 3}


def _penguins(penguins_csv: Path, folder: Path) -> pl.DataFrame:
    frame = pl.read_csv(penguins_csv, null_values="NA")
    folder.mkdir()
    frame.head(250).write_csv(folder / "a.csv")
    return frame


def test_deterministic_run_reproduces_exactly_after_the_clean_table_grew(
    penguins_csv: Path, tmp_path: Path
) -> None:
    """Trained with training.deterministic, then more rows arrive: reproduce reads the clean
    table at the run's version, rebuilds the same model and finds identical probabilities;
    the outcome is a catalog event."""
    frame = _penguins(penguins_csv, tmp_path / "data")
    project = Project.init(tmp_path / "data", target="species", directory=tmp_path / "p",
                           training={**TRAINING, "deterministic": True})
    with project:
        result = project.run()
        run = project.catalog.get_run(result.run_id)
        assert run.params["training"]["deterministic"] is True
        frame.tail(frame.height - 250).write_csv(tmp_path / "data" / "b.csv")
        project.ingest()
        clean = "clean/penguins" if "clean/penguins" in run.lake_versions else next(
            t for t in run.lake_versions if t.startswith("clean/"))
        assert project.lake.read(clean).height > project.lake.read(
            clean, version=run.lake_versions[clean]).height  # the table grew since

        again = project.reproduce(result.model_version.ref)
        events = project.catalog.events(kind="reproduce")

    assert again.identical and again.max_abs_difference == 0.0
    assert again.deterministic and again.compared == "probabilities"
    assert again.rows == result.split_sizes["test"]
    assert again.lake_versions == {clean: run.lake_versions[clean]}
    assert again.contract == "project" and again.seed == 0
    assert again.reproduced_score == result.evaluation.score
    assert "exactly" in again.summary
    assert events[0]["subject"] == result.model_version.ref
    assert events[0]["payload"]["identical"] is True


def test_a_run_warmed_with_the_champion_is_reproduced_with_what_it_tried_first(
    penguins_csv: Path, tmp_path: Path, monkeypatch
) -> None:
    """A second run tries the champion's configurations first; reproducing it warms the
    search with those same configurations (not the champion's of the day), and the rebuilt
    model is identical."""
    import loopml.train
    from loopml.train import warm_specs, warmed_with

    _penguins(penguins_csv, tmp_path / "data")
    project = Project.init(tmp_path / "data", target="species", directory=tmp_path / "p",
                           training={**TRAINING, "learners": ["knn"], "deterministic": True})
    with project:
        first = project.run()
    cfg = project.config.model_dump(mode="json")
    cfg["training"]["learners"] = ["linear", "knn"]  # the second run's champion differs
    project.config.from_dict(cfg).save(project.file)
    project = Project(tmp_path / "p")
    with project:
        second = project.run()
        boards = [project.catalog.leaderboard(r.run_id) for r in (first, second)]
        assert warmed_with(boards[0]) == []
        assert warmed_with(boards[1]) == warm_specs(boards[0]) != []
        project.catalog.set_alias(second.model_version.name, "champion",
                                  second.model_version.version)
        searched = []
        search = loopml.train.train

        def spy(*args, **kwargs):
            searched.append(kwargs.get("warm"))
            return search(*args, **kwargs)

        monkeypatch.setattr(loopml.train, "train", spy)
        champion_now = warm_specs(boards[1])  # what a run today would try first
        again = project.reproduce(second.model_version.ref)
    assert searched == [warmed_with(boards[1])] and champion_now != searched[0]
    assert again.identical and again.max_abs_difference == 0.0


def test_cli_run_deterministic_then_reproduce_json(cli, penguins_csv: Path,
                                                   tmp_path: Path) -> None:
    """'loopml run --deterministic' records the flag in the run's params and prints the
    leaderboard, the frontier and the chosen model; 'loopml reproduce NAME@1 --json' reports identical
    predictions; a wall-clock run is reported as not deterministic."""
    assert cli("init", "penguins.csv", "--target", "species")[0] == 0
    config = yaml.safe_load(Path("loopml.yaml").read_text())
    config["training"] = {**config.get("training", {}), **TRAINING}
    Path("loopml.yaml").write_text(yaml.safe_dump(config))

    code, out = cli("run", "--deterministic")
    assert code == 0, out
    assert "Leaderboard" in out and "Frontier" in out and "chosen" in out
    with Project(tmp_path) as project:
        (mv,) = project.models()
        assert project.catalog.get_run(mv.run_id).params["training"]["deterministic"] is True
        assert project.catalog.leaderboard(mv.run_id).best.learner == "linear"

    code, out = cli("reproduce", f"{mv.name}@1", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert found["identical"] is True and found["deterministic"] is True
    assert found["max_abs_difference"] == 0.0 and found["model"] == f"{mv.name}@1"

    assert cli("run")[0] == 0  # the config's training.deterministic is false
    code, out = cli("reproduce", f"{mv.name}@2")
    assert "not deterministic" in out if code else "exactly" in out
    code, out = cli("events", "--kind", "reproduce", "--json")
    assert [e["subject"] for e in json.loads(out)] == [f"{mv.name}@2", f"{mv.name}@1"]


def test_models_without_a_training_run_cannot_be_reproduced(penguins_csv: Path,
                                                             tmp_path: Path) -> None:
    """A version registered by hand, or trained by a loop retraining on labelled predictions
    (which records no clean-table version), names why it cannot be rebuilt."""
    project = Project.init(penguins_csv, target="species", directory=tmp_path / "p",
                           training=TRAINING)
    with project:
        result = project.run()
        catalog, name = project.catalog, project.model_name
        folder = catalog.fetch(name, result.model_version.version)
        catalog.register_model(name, folder, run_id=None, task="classification",
                               metric="log_loss", score=0.1, metrics={})
        with pytest.raises(RegistryError, match="without a run") as by_hand:
            project.reproduce(f"{name}@2")
        retrain = catalog.start_run(project=name, kind="retrain", params=dict(
            catalog.get_run(result.run_id).params))
        catalog.finish_run(retrain, status="finished", metrics={}, lake_versions={},
                           contract_fingerprint=None, git_commit=None)
        catalog.register_model(name, folder, run_id=retrain, task="classification",
                               metric="log_loss", score=0.1, metrics={})
        with pytest.raises(RegistryError, match="retrain run") as retrained:
            project.reproduce(f"{name}@3")
    assert "loopml run" in by_hand.value.hint and "labelled" in retrained.value.hint
