"""The prediction log never blocks: conflicting batches and overflow go to the dead-letter
table, and every row is written, dead-lettered or counted as dropped."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.core.errors import LakeCommitUnknownError, LakeError
from loopml.lake import Lake
from loopml.serve import PredictionLog
from loopml.serve._deadletter import replay_dead_letter_file

TABLE = "predictions/flights"
DEAD = "deadletter/predictions/flights"


def _rows(ids: list[str], values: list) -> pl.DataFrame:
    return pl.DataFrame({"_request_id": ids, "distance": values})


def _balanced(log: PredictionLog) -> bool:
    return log.added_rows == (
        log.written_rows + log.dead_letter_rows + log.dead_letter_file_rows + log.dropped_rows
        + log.pending_rows
    )


def test_type_conflict_goes_to_dead_letter_and_the_queue_moves_on(tmp_path):
    """A request whose types conflict with the table is dead-lettered with its reason; the
    requests around it and later ones are written."""
    lake = Lake(tmp_path / "lake")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    log.add(_rows(["a"], [1.0]))
    assert log.flush() == 1
    log.add(_rows(["b"], [2.0]))
    log.add(_rows(["bad"], ["far"]))  # text where the table holds numbers
    log.add(_rows(["c"], [3.0]))
    assert log.flush() == 2
    assert log.pending_rows == 0 and log.last_error is None
    log.add(_rows(["d"], [4.0]))
    assert log.flush() == 1
    assert sorted(lake.read(TABLE)["_request_id"].to_list()) == ["a", "b", "c", "d"]
    dead = lake.read(DEAD)
    assert dead["_request_id"].to_list() == ["bad"]
    assert dead["distance"].to_list() == ["far"]
    assert "type" in dead["_reason"][0]
    assert dead.schema["_failed_at"] == pl.Datetime("us", "UTC")
    assert (log.written_rows, log.dead_letter_rows, log.dropped_rows) == (4, 1, 0)
    assert _balanced(log)
    log.close()


def test_failing_writes_go_to_dead_letter_after_max_attempts(tmp_path):
    """A batch that fails max_attempts times in a row is dead-lettered, not retried forever."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_attempts=2)
    log.add(_rows(["a", "b"], [1.0, 2.0]))
    try:
        log.flush()
    except Exception:  # noqa: BLE001 - the first attempt fails and keeps the rows
        pass
    assert log.pending_rows == 2
    assert log.flush() == 0
    assert log.pending_rows == 0 and log.dead_letter_rows == 2
    assert "2 attempts" in lake.read(DEAD)["_reason"][0]
    assert _balanced(log)
    log.close()


def test_pending_bound_dead_letters_the_oldest_rows(tmp_path):
    """Past max_pending_rows the oldest requests go to the dead-letter table; the newest
    stay pending; nothing is lost."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")  # the log table is down
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_pending_rows=5)
    for i in range(4):
        log.add(_rows([f"r{i}", f"r{i}"], [float(i), float(i)]))
    assert log.pending_rows <= 5
    try:
        log.flush()
    except Exception:  # noqa: BLE001 - the log table still fails
        pass
    dead = lake.read(DEAD)
    assert sorted(set(dead["_request_id"].to_list())) == ["r0", "r1"]
    assert "more than 5 pending rows" in dead["_reason"][0]
    assert log.pending_rows == 4 and log.dead_letter_rows == 4 and log.dropped_rows == 0
    assert _balanced(log)
    (tmp_path / "lake" / "predictions").unlink()
    log.close()
    assert sorted(set(lake.read(TABLE)["_request_id"].to_list())) == ["r2", "r3"]
    assert _balanced(log) and log.written_rows == 4


def test_rows_no_table_takes_are_dropped_and_counted(tmp_path, caplog):
    """When the dead-letter table fails too, rows past the bound are dropped with an ERROR
    log line and counted; written + dead-lettered + dropped + pending = added."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")
    (tmp_path / "lake" / "deadletter").write_text("not a folder")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_pending_rows=3)
    for i in range(5):
        log.add(_rows([f"r{i}"], [float(i)]))
    try:
        log.flush()
    except Exception:  # noqa: BLE001 - the log table still fails
        pass
    assert log.dropped_rows == 2 and log.pending_rows == 3
    assert any(r.levelname == "ERROR" and "Dropped" in r.message for r in caplog.records)
    assert _balanced(log)
    (tmp_path / "lake" / "predictions").unlink()
    log.close()
    assert lake.read(TABLE).height == 3
    assert _balanced(log) and log.written_rows == 3


def test_rows_the_lake_cannot_take_go_to_the_dead_letter_file(tmp_path):
    """With the whole lake unwritable, rows past the bound and batches past max_attempts go
    to the dead-letter file (synced NDJSON outside the lake) instead of being dropped; once
    the lake is back, the log writes to its table again."""
    lake = Lake(tmp_path / "lake")
    (tmp_path / "lake" / "predictions").write_text("not a folder")
    (tmp_path / "lake" / "deadletter").write_text("not a folder")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_pending_rows=3,
                        max_attempts=2, dead_letter_dir=tmp_path / "dead")
    for i in range(5):
        log.add(_rows([f"r{i}"], [float(i)]))
    for _ in range(2):
        try:
            log.flush()
        except Exception:  # noqa: BLE001 - the first attempt fails and keeps the rows
            pass
    assert log.dropped_rows == 0 and log.pending_rows == 0
    assert log.dead_letter_file_rows == 5 and log.dead_letter_rows == 0
    assert log.dead_letter_file == tmp_path / "dead" / "deadletter.predictions.flights.ndjson"
    kept = pl.read_ndjson(log.dead_letter_file)
    assert sorted(kept["_request_id"].to_list()) == [f"r{i}" for i in range(5)]
    assert kept["distance"].to_list()[-1] == "4.0"
    reasons = set(kept["_reason"].to_list())
    assert any("more than 3 pending rows" in r for r in reasons)
    assert any("2 attempts" in r for r in reasons)
    assert log.last_error is not None and _balanced(log)
    (tmp_path / "lake" / "predictions").unlink()
    log.add(_rows(["r5"], [5.0]))
    assert log.flush() == 1 and log.last_error is None
    assert lake.read(TABLE)["_request_id"].to_list() == ["r5"]
    assert _balanced(log)
    log.close()


def test_a_commit_whose_table_cannot_be_read_back_is_not_written_twice(tmp_path, monkeypatch):
    """The lake goes away right after a commit lands (the table cannot be read back): the
    rows are counted as written, not retried or dead-lettered, so each is stored once."""
    from deltalake import DeltaTable

    lake = Lake(tmp_path / "lake")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_attempts=1,
                        dead_letter_dir=tmp_path / "dead")
    log.add(_rows(["a"], [1.0]))
    assert log.flush() == 1  # the table exists: the next batch is a fast append
    refresh = DeltaTable.update_incremental

    def gone(self):
        raise OSError("No such file or directory (os error 2)")

    monkeypatch.setattr(DeltaTable, "update_incremental", gone)
    log.add(_rows(["b", "c"], [2.0, 3.0]))
    assert log.flush() == 2
    monkeypatch.setattr(DeltaTable, "update_incremental", refresh)
    log.add(_rows(["d"], [4.0]))
    assert log.flush() == 1
    assert sorted(lake.read(TABLE)["_request_id"].to_list()) == ["a", "b", "c", "d"]
    assert log.dead_letter_rows == log.dead_letter_file_rows == 0
    assert not log.dead_letter_file.exists() and _balanced(log)
    log.close()


def _commit_then_raise(monkeypatch, lake_dir=None):
    """The next fast append's commit lands and then raises, as when the lake folder is taken
    away while delta-rs finishes the commit; with ``lake_dir``, the folder is moved away (a
    file put in its place) right after the commit."""
    from deltalake import DeltaTable

    commit = DeltaTable.create_write_transaction

    def landed_then_raised(self, *args, **kwargs):
        commit(self, *args, **kwargs)
        monkeypatch.setattr(DeltaTable, "create_write_transaction", commit)  # once
        if lake_dir is not None:
            lake_dir.rename(lake_dir.with_name("lake.away"))
            lake_dir.write_text("the lake is gone")
        raise OSError("Generic LocalFileSystem error: No such file or directory (os error 2)")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", landed_then_raised)


def _lake_gone_after_a_commit(tmp_path, monkeypatch, **options):
    """A log that wrote "a", then whose write of "b" and "c" landed and raised as the lake
    folder was taken away."""
    lake_dir = tmp_path / "lake"
    lake = Lake(lake_dir)
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60,
                        dead_letter_dir=tmp_path / "dead", **options)
    log.add(_rows(["a"], [1.0]))
    assert log.flush() == 1  # the table exists: the next batch is a fast append
    _commit_then_raise(monkeypatch, lake_dir)
    log.add(_rows(["b", "c"], [2.0, 3.0]))
    with pytest.raises(LakeCommitUnknownError):
        log.flush()
    return lake_dir, lake, log


def _bring_back(lake_dir):
    lake_dir.unlink()
    lake_dir.with_name("lake.away").rename(lake_dir)


def _ids(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["_request_id"].to_list())


def test_a_commit_that_landed_but_raised_is_written_once(tmp_path, monkeypatch):
    """A commit that lands and still raises is found by its batch id in the table's history:
    its rows count as written, and are neither written again nor dead-lettered."""
    lake = Lake(tmp_path / "lake")
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60, max_attempts=1,
                        dead_letter_dir=tmp_path / "dead")
    log.add(_rows(["a"], [1.0]))
    assert log.flush() == 1  # the table exists: the next batch is a fast append
    _commit_then_raise(monkeypatch)
    log.add(_rows(["b", "c"], [2.0, 3.0]))
    assert log.flush() == 2
    log.add(_rows(["d"], [4.0]))
    assert log.flush() == 1
    assert _ids(lake.read(TABLE)) == ["a", "b", "c", "d"]
    assert DEAD not in lake.tables() and not log.dead_letter_file.exists()
    assert (log.written_rows, log.pending_rows, log.last_error) == (4, 0, None)
    assert _balanced(log)
    log.close()


def test_rows_whose_commit_landed_wait_for_the_lake_instead_of_the_dead_letters(
        tmp_path, monkeypatch):
    """The lake folder is taken away right after a commit lands: the log cannot tell whether
    the rows are in, so they wait (not dead-lettered even past max_attempts) while later rows
    go to the dead-letter file; once the lake is back they count as written. Every row ends
    in exactly one place, and a replay of the file appends only the rows not in the table."""
    lake_dir, lake, log = _lake_gone_after_a_commit(tmp_path, monkeypatch, max_attempts=1)
    assert log.pending_rows == 2 and not log.dead_letter_file.exists()
    log.add(_rows(["d"], [4.0]))
    assert log.flush() == 0  # d certainly failed: dead-lettered at once (max_attempts=1)
    with pytest.raises(LakeError, match="Cannot tell yet"):
        log.flush()
    assert log.pending_rows == 2 and _balanced(log)
    assert _ids(pl.read_ndjson(log.dead_letter_file)) == ["d"]
    _bring_back(lake_dir)
    assert log.flush() == 2
    assert _ids(lake.read(TABLE)) == ["a", "b", "c"]
    assert _ids(pl.read_ndjson(log.dead_letter_file)) == ["d"]
    assert (log.written_rows, log.dead_letter_file_rows, log.pending_rows) == (3, 1, 0)
    assert _balanced(log)
    log.close()
    assert replay_dead_letter_file(lake, log.dead_letter_file, TABLE) == (1, 0)
    assert replay_dead_letter_file(lake, log.dead_letter_file, TABLE) == (0, 1)
    table = lake.read(TABLE)
    assert _ids(table) == ["a", "b", "c", "d"]
    assert table.schema["distance"] == pl.Float64


def test_a_replay_skips_rows_dead_lettered_at_close_whose_commit_landed(tmp_path, monkeypatch):
    """Closed while the lake is still away, the log hands the rows whose commit may have
    landed to the dead-letter file with their batch id; the commit did land, so replaying
    the file once the lake is back appends none of them: each row is in the table once."""
    lake_dir, lake, log = _lake_gone_after_a_commit(tmp_path, monkeypatch)
    log.close()
    kept = pl.read_ndjson(log.dead_letter_file)
    assert _ids(kept) == ["b", "c"] and kept["_batch_id"].n_unique() == 1
    assert (log.written_rows, log.dead_letter_file_rows, log.pending_rows) == (1, 2, 0)
    assert _balanced(log)
    _bring_back(lake_dir)
    assert replay_dead_letter_file(lake, log.dead_letter_file, TABLE) == (0, 2)
    assert _ids(lake.read(TABLE)) == ["a", "b", "c"]


def test_health_counts_dead_letters_and_drops(classifier, client_for, tmp_path):
    """/health reports rows dead-lettered and dropped."""
    log = PredictionLog(Lake(tmp_path / "lake"), "flights")
    health = client_for(classifier, log=log).get("/health").json()
    assert health["rows_dead_lettered"] == 0 and health["rows_dropped"] == 0
