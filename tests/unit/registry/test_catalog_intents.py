"""Source cursors and ingest intents, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from loopml.core.errors import RegistryError
from loopml.registry import Catalog


def _begin(catalog: Catalog, source: str = "orders", **changes) -> str:
    fields = {"cursor_before": None, "cursor_after": {"files": {"a.csv": "ab"}},
              "versions": {"raw": None, "clean": 3, "quarantine": None},
              "contract_fingerprint": "c0ffee", "details": {"files": ["a.csv"]}}
    return catalog.begin_ingest(source, **(fields | changes))


def test_a_cursor_is_stored_only_when_the_ingest_finishes(catalog: Catalog) -> None:
    """Pending intents leave the cursor alone; finishing stores it with an event."""
    assert catalog.cursor("orders") is None
    ingest_id = _begin(catalog)
    [pending] = catalog.pending_ingests()
    assert pending["ingest_id"] == ingest_id and pending["versions"]["clean"] == 3
    assert catalog.cursor("orders") is None
    catalog.finish_ingest(ingest_id, counts={"rows_in": 5, "accepted": 4}, event="ingest")
    assert catalog.cursor("orders") == {"files": {"a.csv": "ab"}}
    assert catalog.pending_ingests() == []
    [event] = catalog.events(kind="ingest")
    assert event["payload"] == {"ingest_id": ingest_id, "rows_in": 5, "accepted": 4}
    [done] = catalog.intents(status="done")
    assert done["counts"]["rows_in"] == 5 and done["finished_at"] is not None


def test_an_undone_intent_keeps_the_old_cursor(catalog: Catalog) -> None:
    """Undoing records why and leaves the previous cursor in place."""
    first = _begin(catalog)
    catalog.finish_ingest(first, counts={})
    second = _begin(catalog, cursor_before={"files": {"a.csv": "ab"}},
                    cursor_after={"files": {"a.csv": "ab", "b.csv": "cd"}})
    catalog.undo_ingest(second, reason="stopped before raw")
    assert catalog.cursor("orders") == {"files": {"a.csv": "ab"}}
    assert catalog.events(kind="ingest_undone")[0]["payload"]["reason"] == "stopped before raw"


def test_an_intent_cannot_finish_twice(catalog: Catalog) -> None:
    """A second finish (another process recovered it first) is a clear RegistryError."""
    ingest_id = _begin(catalog)
    catalog.finish_ingest(ingest_id, counts={})
    with pytest.raises(RegistryError, match="already done"):
        catalog.finish_ingest(ingest_id, counts={})
    with pytest.raises(RegistryError, match="already done"):
        catalog.undo_ingest(ingest_id, reason="x")


def test_finish_records_the_ingest_for_lineage(catalog: Catalog, make_ingest) -> None:
    """With a result, the ingest's counts land in the ingests table in the same transaction."""
    run_id = catalog.start_run(project="p", params={})
    ingest_id = _begin(catalog, source="flights")
    result = make_ingest(ingest_id)
    catalog.finish_ingest(ingest_id, counts={"rows_in": 100}, result=result, run_id=run_id)
    [row] = catalog.ingests(source="flights")
    assert row["ingest_id"] == ingest_id and row["run_id"] == run_id and row["rows_in"] == 100


def test_replay_intents_do_not_move_cursors(catalog: Catalog) -> None:
    """A replay's intent stores no cursor, and logs its own event kind."""
    ingest_id = _begin(catalog, kind="replay", cursor_after=None)
    catalog.finish_ingest(ingest_id, counts={"moved": 2}, event="quarantine_replay")
    assert catalog.cursor("orders") is None
    assert catalog.events(kind="quarantine_replay")[0]["payload"]["moved"] == 2
    with pytest.raises(RegistryError, match="Unknown intent kind"):
        _begin(catalog, kind="other")


def test_store_cursor_and_list_cursors(catalog: Catalog) -> None:
    """store_cursor sets and replaces; cursors() lists every source's."""
    catalog.store_cursor("a", {"offset": 1}, ingest_id="x")
    catalog.store_cursor("a", {"offset": 2}, ingest_id="y")
    catalog.store_cursor("b", {"watermark": "2026-01-01"}, ingest_id="z")
    found = catalog.cursors()
    assert found["a"]["cursor"] == {"offset": 2} and found["a"]["ingest_id"] == "y"
    assert set(found) == {"a", "b"}


def test_ingest_lock_is_exclusive_per_source(catalog: Catalog, catalog_url: str,
                                             tmp_path) -> None:
    """While one catalog holds a source's lock, another cannot take it; others can."""
    from loopml.core.errors import SourceBusyError

    with Catalog(catalog_url, tmp_path / "other") as other:
        with catalog.ingest_lock("orders"):
            with pytest.raises(SourceBusyError, match="another process"):
                with other.ingest_lock("orders"):
                    pass
            with other.ingest_lock("sensors"):
                pass
        with other.ingest_lock("orders"):  # free again
            pass
