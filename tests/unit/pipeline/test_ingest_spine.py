"""The ingest spine: incremental chunks, duplicates across ingests, keys, type conflicts,
quarantine replay, and completing an ingest that stopped half-way."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.contract import ColumnSpec
from loopml.core.errors import LakeConflictError
from loopml.pipeline import Project, _commit
from tests.ingest_project import (
    COLUMNS,
    assert_each_row_once,
    make_project,
    set_contract,
    write_csv,
)


class Crash(Exception):
    pass


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch):
    """``crash_at(point)`` makes the next ingest or replay raise at ``point``; None stops it."""

    def arm(point: str | None) -> None:
        def hook(at: str) -> None:
            if at == point:
                raise Crash(at)

        monkeypatch.setattr(_commit, "crash_hook", hook if point else None)

    return arm


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def _keys(name: str, n: int) -> set[tuple[str, int]]:
    return {(f"data/{name}", i) for i in range(2, n + 2)}  # CSV line numbers: header is line 1


def test_ingest_is_incremental_and_stores_the_cursor(root: Path) -> None:
    """A second ingest reads only the new file; the cursor names both files."""
    write_csv(root, "a.csv", [(1, 10, "x"), (2, 20, "y")])
    with Project(root) as p:
        first = p.ingest()
        write_csv(root, "b.csv", [(3, 30, "x")])
        second = p.ingest()
        third = p.ingest()
        cursor = p.catalog.cursor("orders")
        events = p.catalog.events(kind="ingest")
    assert [r.report.rows_in for r in first] == [2]
    assert [r.files for r in second] == [("data/b.csv",)]
    assert third == []
    assert set(cursor["files"]) == {"data/a.csv", "data/b.csv"}
    assert [e["payload"]["rows_in"] for e in events] == [1, 2]
    assert_each_row_once(root, _keys("a.csv", 2) | _keys("b.csv", 1))


def test_duplicates_of_earlier_ingests_are_quarantined(root: Path) -> None:
    """A row equal to one ingested before goes to quarantine, counted as a duplicate."""
    write_csv(root, "a.csv", [(1, 10, "x"), (2, 20, "y")])
    with Project(root) as p:
        p.ingest()
        write_csv(root, "b.csv", [(2, 20, "y"), (3, 30, "z"), (3, 30, "z")])
        [result] = p.ingest()
        rows = p.quarantined("orders")
    assert result.report.duplicates == 2 and result.report.rows_accepted == 1
    assert sorted(rows["_reasons"].to_list()) == [
        "duplicate of a row ingested before", "duplicate of an earlier row"]
    assert_each_row_once(root, _keys("a.csv", 2) | _keys("b.csv", 3))


def test_key_upsert_latest_wins_and_reingest_is_idempotent(tmp_path: Path) -> None:
    """With a key, the row with the largest latest_by wins; the same data again changes
    nothing."""
    root = make_project(tmp_path, source={"key": ["id"], "latest_by": "amount"})
    write_csv(root, "a.csv", [(1, 10, "old"), (1, 30, "newest"), (1, 20, "middle"), (2, 5, "b")])
    with Project(root) as p:
        [first] = p.ingest()
        write_csv(root, "b.csv", [(2, 6, "b2"), (3, 1, "c")])
        [second] = p.ingest()
        (root / "data" / "c.csv").write_text((root / "data" / "b.csv").read_text() + "\n")
        [third] = p.ingest()  # same rows, other file
        clean = p.lake.read("clean/orders").sort("id")
    assert first.replaced == 2 and second.replaced == 1
    assert clean["label"].to_list() == ["newest", "b2", "c"]
    assert third.report.duplicates == 2 and third.report.rows_accepted == 0
    assert clean.height == 3


def test_a_late_older_row_does_not_replace_a_newer_one_of_earlier_ingests(
    tmp_path: Path,
) -> None:
    """Across ingests too, the row with the largest latest_by wins: an older version of a key
    arriving later is superseded (counted), and a newer one replaces the row in clean."""
    root = make_project(tmp_path, source={"key": ["id"], "latest_by": "amount"})
    write_csv(root, "a.csv", [(1, 30, "newest"), (2, 5, "b")])
    with Project(root) as p:
        p.ingest()
        write_csv(root, "b.csv", [(1, 10, "late but older"), (2, 7, "newer b"), (3, 1, "c")])
        [second] = p.ingest()
        clean = p.lake.read("clean/orders").sort("id")
    assert clean["label"].to_list() == ["newest", "newer b", "c"]
    assert second.replaced == 2  # the late older row of key 1, and the old row of key 2


def test_type_conflict_is_a_clear_error_or_quarantined(tmp_path: Path) -> None:
    """A column whose type changed in the contract: an error naming the column and both
    types, or (on_type_conflict: quarantine) its rows to quarantine with a reason."""
    root = make_project(tmp_path)
    write_csv(root, "a.csv", [(1, 10, "x")])
    with Project(root) as p:
        p.ingest()
    changed = (COLUMNS[0], COLUMNS[1], ColumnSpec(name="label", type="integer"))
    set_contract(root, changed)
    write_csv(root, "b.csv", [(2, 20, 7), (3, 30, None)])
    with Project(root) as p, pytest.raises(LakeConflictError) as err:
        p.ingest()
    assert "'label'" in err.value.message and "String" in err.value.message
    assert "Int64" in err.value.message
    set_contract(root, COLUMNS)  # the fix: the contract's type back as the table's
    with Project(root) as p:
        assert p.catalog.pending_ingests() == []  # the stopped ingest was undone
        [fixed] = p.ingest()  # so b.csv is read again
    assert fixed.report.rows_accepted == 2
    assert_each_row_once(root, _keys("a.csv", 1) | _keys("b.csv", 2))

    set_contract(root, changed)
    write_csv(root, "c.csv", [(4, 40, 8), (5, 50, None)])
    cfg = (root / "loopml.yaml").read_text().replace(
        "path: data/*.csv", "path: data/*.csv\n  on_type_conflict: quarantine")
    (root / "loopml.yaml").write_text(cfg)
    with Project(root) as p:
        [result] = p.ingest()
        rows = p.quarantined("orders", reason="does not fit")
    assert result.report.rows_accepted == 1 and result.report.rows_quarantined == 1
    assert rows["_source_file"].to_list() == ["data/c.csv"]
    assert rows["_reasons"].to_list() == [
        "label: Int64 does not fit the clean table's type String"]
    assert_each_row_once(root, _keys("a.csv", 1) | _keys("b.csv", 2) | _keys("c.csv", 2))


def test_replay_moves_rows_that_pass_the_fixed_contract(root: Path) -> None:
    """After the contract is widened, replay moves the rows that now pass; the rest stay."""
    write_csv(root, "a.csv", [(1, 10, "x"), (2, 5000, "y"), (3, "n/a", "z"), (4, 20, "w")])
    with Project(root) as p:
        p.ingest()
        before = p.quarantine()[0]
    assert before["rows"] == 2 and before["by_reason"] == {
        "amount: … is above the maximum 1000": 1, "amount: '…' is not a number": 1}
    set_contract(root, (COLUMNS[0], ColumnSpec(name="amount", type="float", min=0, max=10_000),
                        COLUMNS[2]))
    with Project(root) as p:
        counts = p.replay("orders")
        left = p.quarantined("orders")
        events = p.catalog.events(kind="quarantine_replay")
        clean = p.lake.read("clean/orders")
    assert (counts["rows_in"], counts["moved"], counts["still_quarantined"]) == (2, 1, 1)
    assert left["_source_row"].to_list() == [4]  # line 4: the third row
    assert 5000.0 in clean["amount"].to_list()
    assert events[0]["payload"]["moved"] == 1
    assert_each_row_once(root, _keys("a.csv", 4))


@pytest.mark.parametrize("point", ["after_begin", "after_raw", "after_clean",
                                   "after_quarantine", "before_finish"])
def test_an_ingest_stopped_at_any_point_is_finished_or_undone(
    root: Path, point: str, crash_at
) -> None:
    """A crash at each step of an ingest leaves every row in one place after the next one."""
    write_csv(root, "a.csv", [(1, 10, "x"), (2, -1, "y")])
    write_csv(root, "b.csv", [(3, 30, "x"), (3, 30, "x"), (4, "bad", "z")])
    crash_at(point)
    with Project(root) as p, pytest.raises(Crash):
        p.ingest()
    crash_at(None)
    with Project(root) as p:
        results = p.ingest()
        assert p.catalog.pending_ingests() == []
        assert set(p.catalog.cursor("orders")["files"]) == {"data/a.csv", "data/b.csv"}
    assert sum(r.report.rows_in for r in results) == 5
    assert any(r.recovered for r in results) == (point != "after_begin")
    assert_each_row_once(root, _keys("a.csv", 2) | _keys("b.csv", 3))


@pytest.mark.parametrize("point", ["after_clean", "after_quarantine", "before_finish"])
def test_a_replay_stopped_half_way_is_finished(root: Path, point: str, crash_at) -> None:
    """A replay that stopped between its commits is completed by the next start."""
    write_csv(root, "a.csv", [(1, 10, "x"), (2, 5000, "y"), (3, 6000, "y"), (4, -3, "w")])
    with Project(root) as p:
        p.ingest()
    set_contract(root, (COLUMNS[0], ColumnSpec(name="amount", type="float", min=0, max=10_000),
                        COLUMNS[2]))
    crash_at(point)
    with Project(root) as p, pytest.raises(Crash):
        p.replay("orders")
    crash_at(None)
    with Project(root) as p:
        p.ingest()
        assert p.catalog.pending_ingests() == []
        assert p.quarantined("orders")["_source_row"].to_list() == [5]  # the fourth row
    assert_each_row_once(root, _keys("a.csv", 4))


def test_reader_rejected_rows_go_to_quarantine(root: Path) -> None:
    """Rows a reader could not parse (Chunk.rejected) land in quarantine with _raw."""
    import polars as pl

    from loopml.core.records import Chunk
    from loopml.pipeline._ingest import commit_chunk

    frame = pl.DataFrame({"id": ["1"], "amount": ["2"], "label": ["x"],
                          "_source_file": ["t"], "_source_row": [1]})
    rejected = pl.DataFrame({"_source_file": ["t"], "_source_row": [2],
                             "_raw": ["1,2,3,4"], "_reasons": ["line has 4 fields, not 3"]})
    called = []
    chunk = Chunk(source="orders", frame=frame, cursor={"n": 2}, rejected=rejected,
                  on_commit=lambda: called.append(True))
    with Project(root) as p:
        ctx = p.context
        result = commit_chunk(ctx, ctx.config.source("orders"), chunk, cursor=None)
        q = p.quarantined("orders")
        assert p.catalog.cursor("orders") == {"n": 2}
    assert called == [True]
    assert result.rejected == 1 and result.report.rows_in == 2
    assert q["_raw"].to_list() == ["1,2,3,4"]


def test_partition_by_partitions_the_new_clean_table(tmp_path: Path) -> None:
    """partition_by is applied when the clean table is first written."""
    from deltalake import DeltaTable

    root = make_project(tmp_path, source={"partition_by": ["label"]})
    write_csv(root, "a.csv", [(1, 10, "x"), (2, 20, "y")])
    with Project(root) as p:
        p.ingest()
        path = p.lake.path("clean/orders")
        write_csv(root, "b.csv", [(3, 30, "x")])
        p.ingest()
        assert p.lake.read("clean/orders").height == 3
    assert DeltaTable(path).metadata().partition_columns == ["label"]
    assert (Path(path) / "label=x").is_dir()


def test_a_lake_from_before_cursors_is_not_ingested_again(root: Path) -> None:
    """Raw commits of an older loopml (loopml.files) seed a file source's cursor."""
    import polars as pl

    write_csv(root, "a.csv", [(1, 10, "x")])
    with Project(root) as p:
        p.ingest()
        digest = p.catalog.cursor("orders")["files"]["data/a.csv"]
    import shutil

    shutil.rmtree(root / ".loopml" / "lake")
    (root / ".loopml" / "catalog.db").unlink()
    with Project(root) as p:
        p.lake.append("raw/orders", pl.DataFrame({"id": ["1"]}), metadata={
            "loopml.ingest_id": "old", "loopml.files": f'{{"data/a.csv": "{digest}"}}'})
        assert p.ingest() == []
        assert p.catalog.cursor("orders") == {"files": {"data/a.csv": digest}}



def test_an_intent_being_written_elsewhere_is_not_recovered(root: Path) -> None:
    """A pending intent whose source another process holds is left alone: ingest says the
    source is busy, and ``loopml run``'s ingest leaves that source out."""
    from loopml.core.errors import SourceBusyError
    from loopml.pipeline._ingest import ingest_source
    from loopml.registry import Catalog

    write_csv(root, "a.csv", [(1, 10, "x")])
    with Project(root) as p:
        other = Catalog(p.catalog.url.render_as_string(hide_password=False),
                        root / ".loopml" / "artifacts")
        with other.ingest_lock("orders"):
            with pytest.raises(SourceBusyError):
                p.ingest()
            with pytest.raises(SourceBusyError):
                p.replay("orders")
            assert ingest_source(p.context, skip_busy=True) == []
        other.close()
        assert len(p.ingest()) == 1


def test_a_chunk_raw_cannot_take_is_undone_at_once(root: Path) -> None:
    """A chunk whose types the raw table refuses fails clearly and leaves no pending intent
    and no cursor behind."""
    import polars as pl

    from loopml.core.errors import LakeError
    from loopml.core.records import Chunk
    from loopml.pipeline._ingest import commit_chunk

    write_csv(root, "a.csv", [(1, 10, "x")])
    with Project(root) as p:
        p.ingest()
        before = p.catalog.cursor("orders")
        ctx = p.context
        frame = pl.DataFrame({"id": [{"a": 1}], "_source_file": ["t"], "_source_row": [1]})
        with pytest.raises(LakeError):
            commit_chunk(ctx, ctx.config.source("orders"), Chunk(
                source="orders", frame=frame, cursor={"n": 1}), cursor=before)
        assert p.catalog.pending_ingests() == []
        assert p.catalog.cursor("orders") == before
        assert p.catalog.intents(status="undone")[0]["counts"]["reason"]
