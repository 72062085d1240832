"""Cleaning through a real ingest: the log is counted, stored with the ingest, printed by
``loopml ingest`` and shown in the validation report; a restart cleans as the intent says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from loopml.core.contract import ColumnSpec
from loopml.core.errors import ConfigError
from loopml.pipeline import Project, _commit
from tests.ingest_project import assert_each_row_once, make_project, write_csv

COLUMNS = (
    ColumnSpec(name="id", type="integer", nullable=False),
    ColumnSpec(name="amount", type="float", min=0, max=100_000),
    ColumnSpec(name="label", type="category", allowed=("Paris", "Lyon")),
)
CLEANING = {
    "repair": {"numbers": True},
    "categories": {"similarity": 0.8},
    "missing": {"amount": {"impute": "median", "value": 7}},
    "outliers": {"amount": {"method": "iqr", "q1": 5, "q3": 15, "k": 1.5, "action": "clip"}},
}
ROWS = [(1, '"1,234.5"', "Paris"), (2, None, " paris"), (3, "12 kg", "PARIS"),
        (4, 5, "Pariss"), (4, 5, "Pariss"), (5, "x", "Lyon")]


def _project(root: Path, cleaning: dict | None = CLEANING) -> Path:
    source = {} if cleaning is None else {"cleaning": cleaning}
    make_project(root, source=source, columns=COLUMNS)
    write_csv(root, "a.csv", ROWS)
    return root


def _keys(n: int) -> set[tuple[str, int]]:
    return {("data/a.csv", i) for i in range(2, n + 2)}


def test_ingest_json_sums_the_cleaning_log_per_step(cli, tmp_path: Path) -> None:
    """'loopml ingest --json' gives the changes per step and column; the text output a line
    per step; every row is in one place."""
    root = _project(tmp_path)
    code, out = cli("ingest", "--json")
    assert code == 0, out
    [s] = json.loads(out)["sources"]
    assert (s["rows_in"], s["accepted"], s["quarantined"], s["duplicates"]) == (6, 4, 2, 1)
    assert s["cleaning"] == {"repair": 2, "categories": 3, "duplicates": 1, "missing": 1,
                             "outliers": 1}
    assert s["cleaning_columns"]["categories"] == {"label": 3}
    assert_each_row_once(root, _keys(6))
    with Project(root) as p:
        clean = p.lake.read("clean/orders").sort("id")
    assert clean["amount"].to_list() == [30.0, 7.0, 12.0, 5.0]  # 1234.5 clipped, null imputed
    assert clean["label"].to_list() == ["Paris"] * 4
    write_csv(root, "b.csv", [(9, "€3.50", "lyon")])
    code, out = cli("ingest")
    assert code == 0 and "orders cleaning, repair: 1 changed (amount 1)" in out
    assert "orders cleaning, categories: 1 changed (label 1)" in out


def test_the_log_is_stored_with_the_ingest_and_shown_in_the_report(tmp_path: Path) -> None:
    """The catalog keeps each step's changes with examples; the report has a Cleaning part."""
    from loopml.reports import render

    root = _project(tmp_path)
    with Project(root) as p:
        [result] = p.ingest()
        [stored] = p.catalog.ingests(source="orders")
    changes = {(c["step"], c["column"], c["action"]): c for c in stored["cleaning"]["changes"]}
    merge = changes[("categories", "label", "merge")]
    assert merge["rows"] == 1 and merge["examples"] == [["Pariss", "Paris", 1]]
    assert changes[("outliers", "amount", "clip iqr")]["examples"] == [["1234.5", "30.0", 1]]
    assert changes[("duplicates", "*", "exact")]["rows"] == 1
    html = render(result.report)
    assert 'id="cleaning"' in html and "&#39;Pariss&#39; → &#39;Paris&#39; ×1" in html


def test_without_cleaning_nothing_changes(tmp_path: Path) -> None:
    """A source without cleaning settings ingests as before and logs nothing."""
    root = _project(tmp_path, cleaning=None)
    with Project(root) as p:
        [result] = p.ingest()
        [stored] = p.catalog.ingests(source="orders")
    assert result.report.cleaning is None and stored["cleaning"] is None
    assert result.report.rows_accepted == 0  # each row is unreadable or misspelled as written
    assert_each_row_once(root, _keys(6))


def test_a_restart_cleans_as_the_intent_recorded(tmp_path: Path, monkeypatch) -> None:
    """Settings changed between a crash and the restart do not change how the chunk is cleaned."""
    root = _project(tmp_path)

    class Crash(Exception):
        pass

    def hook(at: str) -> None:
        if at == "after_clean":
            raise Crash(at)

    monkeypatch.setattr(_commit, "crash_hook", hook)
    with Project(root) as p, pytest.raises(Crash):
        p.ingest()
    monkeypatch.setattr(_commit, "crash_hook", None)
    config = yaml.safe_load((root / "loopml.yaml").read_text())
    del config["sources"][0]["cleaning"]
    (root / "loopml.yaml").write_text(yaml.safe_dump(config))
    with Project(root) as p:
        [result] = p.ingest()
        clean = p.lake.read("clean/orders")
    assert result.recovered and result.report.cleaning.by_step()["categories"] == 3
    assert clean.height == 4
    assert_each_row_once(root, _keys(6))


def test_settings_that_do_not_fit_the_contract_fail_before_reading(tmp_path: Path) -> None:
    """A cleaning column the contract does not list is a ConfigError, and no ingest is begun."""
    root = _project(tmp_path, cleaning={"missing": {"amout": "drop"}})
    with Project(root) as p:
        with pytest.raises(ConfigError) as info:
            p.ingest()
        assert "Did you mean 'amount'" in info.value.message
        assert p.catalog.ingests(source="orders") == [] and p.catalog.pending_ingests() == []
