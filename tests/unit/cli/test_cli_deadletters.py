"""``loopml dead-letters ls|replay``: rows a server could not log are listed and put back into
the prediction log once, however often the replay runs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from loopml.pipeline import Project
from loopml.serve import dead_letter_path
from loopml.serve._deadletter import write_dead_letter_file  # what a failing server writes


def _project_with_a_model(cli, penguins_csv: Path, tmp_path: Path) -> Project:
    assert cli("init", "penguins.csv", "--target", "sex", "-x", "species")[0] == 0
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "bundle.json").write_text("{}")
    proj = Project(tmp_path / "loopml.yaml")
    proj.catalog.register_model("penguins", folder, run_id=None, task="classification",
                                metric="roc_auc", score=0.9, metrics={"roc_auc": 0.9})
    return proj


def test_dead_letters_are_listed_and_replayed_once(cli, penguins_csv: Path,
                                                   tmp_path: Path) -> None:
    proj = _project_with_a_model(cli, penguins_csv, tmp_path)
    code, out = cli("dead-letters", "ls")
    assert code == 0 and "No dead letters" in out

    with proj:  # what a server wrote while its lake could not be written
        lake = proj.lake
        lake.append("predictions/penguins", pl.DataFrame({"request_id": ["r0"], "p": [0.1]}))
        path = dead_letter_path(proj.path(proj.config.serving.dead_letter_dir),
                                "deadletter/predictions/penguins")
        write_dead_letter_file(path, [pl.DataFrame({"request_id": ["r1", "r2"], "p": [0.2, 0.3]})],
                               "lake unwritable", batch_id="b1", since=0)
        write_dead_letter_file(path, [pl.DataFrame({"request_id": ["r3"], "p": [0.4]})],
                               "lake unwritable", batch_id="b2", since=0)

    code, out = cli("dead-letters", "ls", "--json")
    assert code == 0, out
    (listed,) = json.loads(out)
    assert (listed["model"], listed["rows"], listed["batches"], listed["to_replay"]) == (
        "penguins", 3, 2, 3)
    assert listed["reasons"] == {"lake unwritable": 3}

    code, out = cli("dead-letters", "replay", "--json")
    assert code == 0, out
    assert [(d["appended"], d["skipped"]) for d in json.loads(out)] == [(3, 0)]
    code, out = cli("dead-letters", "replay", "penguins", "--json")  # again: nothing twice
    assert [(d["appended"], d["skipped"]) for d in json.loads(out)] == [(0, 3)]

    with Project(tmp_path / "loopml.yaml") as again:
        logged = again.lake.read("predictions/penguins").sort("request_id")
        assert logged["request_id"].to_list() == ["r0", "r1", "r2", "r3"]
        assert logged["p"].dtype == pl.Float64
        assert [e["payload"]["appended"] for e in again.events(kind="dead_letter_replay")] == [
            0, 3]
    code, out = cli("dead-letters", "ls", "--json")
    assert json.loads(out)[0]["to_replay"] == 0


def test_replaying_an_unknown_model_says_which_exist(cli, penguins_csv: Path,
                                                     tmp_path: Path) -> None:
    _project_with_a_model(cli, penguins_csv, tmp_path)
    code, out = cli("dead-letters", "replay", "nope")
    assert code != 0 and "nope" in out and "loopml models" in out
