"""``loopml ingest`` killed with SIGKILL at each step of a chunk, then run again: every table
is readable, every input row is in exactly one of clean or quarantine, the cursor advanced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ingest_project import assert_each_row_once, make_project, write_csv

POINTS = ["after_begin", "after_raw", "after_clean", "after_quarantine", "before_finish",
          "after_finish"]


def _ingest(root: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOOPML_TEST_KILL_AT"}
    if kill_at:
        env["LOOPML_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "loopml", "ingest", "--json"], cwd=root, env=env,
        capture_output=True, text=True, timeout=300,
    )


def _files(root: Path) -> set[tuple[str, int]]:
    write_csv(root, "a.csv", [(1, 10, "x"), (2, -5, "y"), (3, 30, "z")])
    write_csv(root, "b.csv", [(4, 40, "x"), (4, 40, "x"), (5, "oops", "y")])
    write_csv(root, "c.csv", [(6, 60, "x"), (1, 10, "x")])  # a duplicate of a.csv's first
    # _source_row is the CSV line number: the header is line 1
    return ({("data/a.csv", i) for i in (2, 3, 4)} | {("data/b.csv", i) for i in (2, 3, 4)}
            | {("data/c.csv", i) for i in (2, 3)})


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_kill_9_during_ingest_then_rerun(tmp_path: Path, point: str) -> None:
    """SIGKILL at the second chunk's ``point``; the rerun finishes it and the rest."""
    root = make_project(tmp_path)
    expected = _files(root)
    died = _ingest(root, f"{point}:2")
    assert died.returncode == -signal.SIGKILL, died.stderr
    again = _ingest(root)
    assert again.returncode == 0, again.stderr
    [summary] = json.loads(again.stdout)["sources"]
    where = assert_each_row_once(root, expected)
    assert len(where["clean"]) == 4 and len(where["quarantine"]) == 4
    from loopml.pipeline import Project

    with Project(root) as p:
        assert p.catalog.pending_ingests() == []
        assert set(p.catalog.cursor("orders")["files"]) == {f"data/{n}.csv" for n in "abc"}
        for table in p.lake.tables():
            p.lake.read(table)  # every table readable
        ingests = p.catalog.ingests(source="orders")
    assert sum(i["rows_in"] for i in ingests) == len(expected)
    # the second chunk is recovered (its raw commit is in), or read again (it was undone),
    # or was done before the kill; the third is read by the rerun
    assert summary["chunks"] == (1 if point == "after_finish" else 2)
    assert summary["recovered"] == (0 if point in ("after_begin", "after_finish") else 1)
    if point == "after_clean":  # the middle of the protocol: a third run changes nothing
        assert _ingest(root).returncode == 0
        assert_each_row_once(root, expected)


@pytest.mark.slow
def test_kill_9_twice_in_a_row(tmp_path: Path) -> None:
    """Killed while writing, then killed again while recovering: still exactly once."""
    root = make_project(tmp_path)
    expected = _files(root)
    assert _ingest(root, "after_clean:1").returncode == -signal.SIGKILL
    assert _ingest(root, "after_quarantine:1").returncode == -signal.SIGKILL
    assert _ingest(root).returncode == 0
    assert_each_row_once(root, expected)


@pytest.mark.slow
@pytest.mark.services
def test_kill_9_with_a_postgresql_catalog(tmp_path: Path, postgres_url: str) -> None:
    """The same protocol with the catalog on PostgreSQL: killed after clean, then rerun."""
    root = make_project(tmp_path, catalog_url=postgres_url)
    expected = _files(root)
    assert _ingest(root, "after_clean:2").returncode == -signal.SIGKILL
    again = _ingest(root)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["sources"][0]["recovered"] == 1
    assert_each_row_once(root, expected)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_clean", "after_quarantine"])
def test_kill_9_during_quarantine_replay(tmp_path: Path, point: str) -> None:
    """'loopml quarantine replay' killed between its commits; the next command finishes it."""
    from loopml.core.contract import ColumnSpec
    from tests.ingest_project import COLUMNS, set_contract

    root = make_project(tmp_path)
    expected = _files(root)
    assert _ingest(root).returncode == 0
    set_contract(root, (COLUMNS[0], ColumnSpec(name="amount", type="float"), COLUMNS[2]))
    env = {**os.environ, "LOOPML_TEST_KILL_AT": point}
    died = subprocess.run([sys.executable, "-m", "loopml", "quarantine", "replay", "orders"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert _ingest(root).returncode == 0  # finishes the replay first
    where = assert_each_row_once(root, expected)
    assert ("data/a.csv", 2) in where["clean"]  # -5 passes the contract without bounds
