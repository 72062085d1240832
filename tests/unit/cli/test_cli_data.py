"""``loopml ingest``, ``sources`` and ``quarantine ls|show|replay``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopml.core.contract import ColumnSpec
from tests.ingest_project import COLUMNS, make_project, set_contract, write_csv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path)
    write_csv(root, "a.csv", [(1, 10, "x"), (1, 10, "x"), (2, 5000, "y"), (3, "n/a", "z")])
    return root


def test_ingest_json_counts_per_source(cli, project: Path) -> None:
    """--json prints rows in, accepted, quarantined and duplicates of each source."""
    code, out = cli("ingest", "--json")
    assert code == 0, out
    [s] = json.loads(out)["sources"]
    assert (s["source"], s["rows_in"], s["accepted"], s["quarantined"], s["duplicates"]) == (
        "orders", 4, 1, 3, 1)
    code, out = cli("ingest", "orders", "--json")  # nothing new
    assert json.loads(out)["sources"][0]["rows_in"] == 0
    code, out = cli("ingest")
    assert code == 0 and "orders" in out and "rows in" in out


def test_sources_json_has_cursor_and_last_ingest(cli, project: Path) -> None:
    """'loopml sources' names each source, its kind, cursor and last counts."""
    code, out = cli("sources", "--json")
    [before] = json.loads(out)
    assert before["cursor"] is None and before["cursor_summary"] == "not ingested yet"
    cli("ingest")
    code, out = cli("sources", "--json")
    [s] = json.loads(out)
    assert code == 0 and s["name"] == "orders" and s["kind"] == "file"
    assert list(s["cursor"]["files"]) == ["data/a.csv"] and s["cursor_summary"] == "1 file"
    assert s["last_ingest"]["rows_in"] == 4 and s["last_ingest"]["started_at"]
    code, out = cli("sources")
    assert code == 0 and "1 file" in out


def test_quarantine_ls_show_replay(cli, project: Path) -> None:
    """ls counts by reason; show filters by reason; replay after a fix moves rows."""
    cli("ingest")
    code, out = cli("quarantine", "ls", "--json")
    [q] = json.loads(out)
    assert q["rows"] == 3 and q["by_reason"] == {
        "duplicate of an earlier row": 1, "amount: … is above the maximum 1000": 1,
        "amount: '…' is not a number": 1}
    code, out = cli("quarantine", "show", "orders", "--reason", "maximum", "--json")
    [row] = json.loads(out)
    assert row["_source_row"] == 4 and row["amount"] == "5000"  # line 4: the third row
    code, out = cli("quarantine", "show", "orders", "--limit", "1")
    assert code == 0 and "_reasons" in out
    set_contract(project, (COLUMNS[0], ColumnSpec(name="amount", type="float", min=0,
                                                  max=10_000), COLUMNS[2]))
    code, out = cli("quarantine", "replay", "orders", "--json")
    counts = json.loads(out)
    assert code == 0 and (counts["moved"], counts["still_quarantined"]) == (1, 2)
    code, out = cli("quarantine", "replay", "orders")
    assert code == 0 and "0 moved to clean, 2 still quarantined" in out


def test_unknown_source_is_a_friendly_error(cli, project: Path) -> None:
    """A misspelt source name fails with the valid names and no traceback."""
    code, out = cli("quarantine", "show", "ordrs")
    assert code != 0 and "Traceback" not in out
    code, out = cli("ingest", "ordrs")
    assert code != 0 and "Traceback" not in out and "orders" in out


def test_profile_reports_the_clean_table_with_its_quarantine_by_reason(cli, project: Path) -> None:
    """'loopml profile' writes the report beside the shared plotly.js and names the
    quarantine table with each reason's count; before any ingest it explains what to do."""
    code, out = cli("profile")
    assert code != 0 and "loopml ingest" in out
    cli("ingest")
    code, out = cli("profile")
    assert code == 0, out
    report = project / ".loopml" / "reports" / "profile" / "orders.html"
    html = report.read_text(encoding="utf-8")
    assert "quarantine/orders@v" in html and "loopml quarantine show orders" in html
    assert "duplicate of an earlier row" in html and "is above the maximum 1000" in html
    assert len(list((project / ".loopml" / "reports").glob("plotly-*.min.js"))) == 1
    assert '"../plotly-' in html
    code, out = cli("profile", "--output", str(project / "out" / "p.html"))
    assert code == 0 and (project / "out" / "p.html").exists()
    assert list((project / "out").glob("plotly-*.min.js"))
