"""The loop's commands: init --ci, models/events --json, check, loop, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loopml.cli import app


def test_help_names_the_loop_commands() -> None:
    """--help lists loop, rollback, events and check with what they do."""
    out = CliRunner().invoke(app, ["--help"]).output
    for command in ("loop", "rollback", "events", "check"):
        assert f"  {command} " in out
    loop_help = CliRunner().invoke(app, ["loop", "--help"]).output
    assert "--watch" in loop_help and "--every" in loop_help and "same evidence" in loop_help


def test_init_ci_writes_a_workflow(cli, penguins_csv: Path, tmp_path: Path) -> None:
    """init --ci writes a GitHub Actions workflow that runs 'loopml run' then 'loopml check'."""
    code, out = cli("init", "penguins.csv", "--target", "species", "--ci")
    assert code == 0, out
    flow = yaml.safe_load((tmp_path / ".github/workflows/loopml.yml").read_text())
    runs = [s["run"] for s in flow["jobs"]["train-and-check"]["steps"] if "run" in s]
    assert runs[-2:] == ["loopml run", "loopml check"]
    code, out = cli("init", "--ci")  # again, in the existing project: refused without --force
    assert code != 0
    code, out = cli("init", "--ci", "--force")
    assert code == 0, out


def test_init_prints_the_columns_it_proposes_to_exclude(cli, tmp_path: Path) -> None:
    """init names each suspected leak or id it left out, and why; --exclude stays first."""
    n = 200
    rows = ["ticket,opened,severity,code,resolved"] + [
        f"{1000 + i},2024-01-{1 + i % 28:02d},{i % 5},c{i % 9},{'yes' if i % 5 > 2 else 'no'}"
        for i in range(n)
    ]
    (tmp_path / "tickets.csv").write_text("\n".join(rows) + "\n")
    code, out = cli("init", "tickets.csv", "--target", "resolved", "--exclude", "code")
    assert code == 0, out
    assert "Proposed leaving out 2 column(s)" in out
    assert "ticket: id-like" in out and "severity: predicts target" in out
    exclude = yaml.safe_load((tmp_path / "loopml.yaml").read_text())["problem"]["exclude"]
    assert exclude == ["code", "severity", "ticket"]


def test_init_without_data_or_ci_says_what_to_do(cli) -> None:
    """init with neither DATA nor --ci explains how to call it."""
    code, _ = cli("init")
    assert code != 0


@pytest.mark.slow
def test_models_events_check_and_rollback(cli, penguins_csv: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A trained project answers in JSON, passes and fails the check, and rolls back."""
    assert cli("init", "penguins.csv", "--target", "sex", "-x", "species")[0] == 0
    assert cli("run", "--time-budget", "3")[0] == 0
    code, out = cli("models", "--json")
    assert code == 0, out
    models = json.loads(out)
    assert models[0]["ref"].endswith("@1") and models[0]["aliases"] == ["champion"]
    assert 0 < models[0]["metrics"]["roc_auc"] <= 1

    assert cli("run", "--time-budget", "3")[0] == 0  # same data: scored on the same test split
    code, out = cli("events", "--json", "--kind", "decision", "--limit", "1")
    decision = json.loads(out)[0]["payload"]
    assert decision["candidate_version"] == 2 and decision["champion_version"] == 1
    (evidence,) = decision["evidence"]
    assert evidence["name"] == "test split" and evidence["comparison"]["rows"] > 0

    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    code, out = cli("check")
    passed = evidence["comparison"]["difference"] >= 0
    assert code == (0 if passed else 1), out
    (row,) = [line for line in out.splitlines() if "test split vs champion v1" in line]
    assert ("pass" if passed else "FAIL") in row
    monkeypatch.setenv("LOOPML_LOOP__FLOORS", "{roc_auc: 0.9999}")
    code, out = cli("check")
    assert code == 1 and "floor roc_auc" in out and "FAIL" in out
    monkeypatch.delenv("LOOPML_LOOP__FLOORS")

    code, out = cli("loop")  # nothing served yet: no trigger, nothing trained
    assert code == 0, out
    assert "No retraining" in out

    assert cli("predict", "penguins.csv", "-o", "scored.csv")[0] == 0
    code, out = cli("monitor", "--json")
    assert code == 0, out
    drift = json.loads(out)
    assert drift["rows"] == 344 and drift["report"].endswith(".html")
    bill = next(f for f in drift["features"] if f["name"] == "bill_length_mm")
    assert bill["status"] in ("ok", "warn", "alert") and "psi" in bill["statistics"]

    code, out = cli("rollback")
    assert code != 0  # v1 has been the only champion
    project = Path.cwd().name
    assert cli("promote", project, "2")[0] == 0
    code, out = cli("rollback")
    assert code == 0 and "v1 is champion again" in out
    code, out = cli("events", "--limit", "3")
    assert code == 0 and "rollback" in out

    served = drift["version"]  # the champion when the file was scored
    assert cli("promote", project, str(3 - served))[0] == 0  # a champion that served nothing
    code, out = cli("monitor", "--json")
    assert code == 0, out  # the version that served last is monitored instead
    assert json.loads(out)["version"] == served and json.loads(out)["rows"] == 344
    code, out = cli("monitor", "--model", f"{project}@{3 - served}")
    assert code != 0 and "No predictions have been logged" in out  # named: no stand-in
