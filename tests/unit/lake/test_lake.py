"""The lake: atomic versioned commits, time travel, schema evolution, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import LakeError
from loopml.lake import Lake, table_name


def test_each_append_is_one_version(tmp_path: Path) -> None:
    """Every append is a commit with the next version number."""
    lake = Lake(tmp_path)
    assert lake.append("raw/t", pl.DataFrame({"x": [1, 2]})).version == 0
    assert lake.append("raw/t", pl.DataFrame({"x": [3]})).version == 1
    assert lake.rows("raw/t") == 3


def test_time_travel_reads_any_version(tmp_path: Path) -> None:
    """An earlier version reads back exactly as it was written."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1, 2]}))
    lake.append("clean/t", pl.DataFrame({"x": [3]}))
    assert sorted(lake.read("clean/t", version=0)["x"].to_list()) == [1, 2]
    assert sorted(lake.read("clean/t")["x"].to_list()) == [1, 2, 3]


def test_new_columns_are_merged_into_the_schema(tmp_path: Path) -> None:
    """A batch with a new column extends the table; old rows read it as null."""
    lake = Lake(tmp_path)
    lake.append("raw/t", pl.DataFrame({"x": [1]}))
    lake.append("raw/t", pl.DataFrame({"x": [2], "y": ["b"]}))
    out = lake.read("raw/t").sort("x")
    assert out["y"].to_list() == [None, "b"]


def test_types_delta_cannot_store_are_converted(tmp_path: Path) -> None:
    """Unsigned, null, categorical and zoned datetime columns are stored losslessly."""
    lake = Lake(tmp_path)
    when = datetime(2013, 1, 1, 10, tzinfo=UTC)
    frame = pl.DataFrame({
        "u": pl.Series([1, 2], dtype=pl.UInt32),
        "n": [None, None],
        "c": pl.Series(["a", "b"], dtype=pl.Categorical),
        "t": [when, when],
    })
    lake.append("raw/t", frame)
    out = lake.read("raw/t")
    assert out["u"].to_list() == [1, 2] and out["c"].to_list() == ["a", "b"]
    assert out["t"].to_list() == [when, when]


def test_commit_metadata_is_kept(tmp_path: Path) -> None:
    """Metadata given to a write is in the table's history."""
    lake = Lake(tmp_path)
    lake.append("raw/t", pl.DataFrame({"x": [1]}), metadata={"loopml.ingest_id": "abc"})
    assert lake.history("raw/t")[0]["loopml.ingest_id"] == "abc"


def test_written_tables_are_plain_delta(tmp_path: Path) -> None:
    """Other Delta readers (Polars' own reader here) read loopml's tables unchanged."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1, 2]}))
    assert pl.read_delta(lake.path("clean/t"))["x"].sort().to_list() == [1, 2]


def test_unknown_table_and_version_errors(tmp_path: Path) -> None:
    """Reading a missing table or version is a LakeError that says what exists."""
    lake = Lake(tmp_path)
    lake.append("raw/flights", pl.DataFrame({"x": [1]}))
    with pytest.raises(LakeError) as info:
        lake.read("raw/flight")
    assert "raw/flights" in info.value.message
    with pytest.raises(LakeError) as info:
        lake.read("raw/flights", version=5)
    assert "0 to 0" in info.value.message


def test_type_conflict_is_a_lake_error(tmp_path: Path) -> None:
    """Appending text to a numeric column is refused with a LakeError, nothing written."""
    lake = Lake(tmp_path)
    lake.append("raw/t", pl.DataFrame({"x": [1]}))
    with pytest.raises(LakeError):
        lake.append("raw/t", pl.DataFrame({"x": ["text"]}))
    assert lake.version("raw/t") == 0


def test_table_names_are_checked() -> None:
    """Zones and names are validated."""
    assert table_name("raw", "flights") == "raw/flights"
    with pytest.raises(LakeError):
        table_name("bronze", "flights")
    with pytest.raises(LakeError):
        table_name("raw", "../etc")


def test_appends_to_an_existing_table_read_back_exactly_everywhere(tmp_path: Path) -> None:
    """Appends of the table's own columns (written by Polars, committed to the Delta log)
    read back exactly through delta-rs, Polars and DuckDB, at every version, with the row
    count and the commit metadata in the history, like the first write's."""
    import duckdb
    from deltalake import DeltaTable

    lake = Lake(tmp_path)
    first = pl.DataFrame({
        "i": [1, 2, None], "f": [0.5, None, 2.5], "s": ["a", None, "ü"],
        "b": [True, False, None], "d": [datetime(2024, 1, 1).date(), None, None],
        "t": [datetime(2024, 1, 1, 12, tzinfo=UTC), None, datetime(2024, 2, 1, tzinfo=UTC)],
    })
    lake.append("clean/t", first)
    second = first.with_columns(pl.col("i") + 10)
    ref = lake.append("clean/t", second.select(reversed(second.columns)),
                      metadata={"loopml.ingest": "7"})
    third = lake.append("clean/t", first.select("i", "s"))  # the rest null
    assert (ref.version, third.version) == (1, 2)
    want = pl.concat([first, second, first.select("i", "s").with_columns(
        pl.lit(None, dtype=first[c].dtype).alias(c) for c in ("f", "b", "d", "t")
    ).select(first.columns)])
    got = lake.read("clean/t")
    order = ["i", "f", "s", "b", "d", "t"]
    assert got.sort(order, nulls_last=True).equals(want.sort(order, nulls_last=True))
    assert lake.read("clean/t", version=1).height == 6
    path = lake.path("clean/t")
    assert pl.read_delta(path).height == 9 and DeltaTable(path).version() == 2
    files = DeltaTable(path).file_uris()
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall() == [(9,)]
    commit = lake.history("clean/t", limit=2)[1]
    assert commit["operationMetrics"]["num_added_rows"] == 3
    assert commit["loopml.ingest"] == "7"
    assert lake.as_read("clean/t", first.select("i", "s"), version=2) is not None


def test_a_new_table_holds_its_first_rows_in_one_commit(tmp_path: Path) -> None:
    """The first append makes the table and its rows in version 0 (one log entry, with the
    commit metadata and row count), readable by delta-rs and Polars; types Delta lacks are
    stored as the types it has; a partitioned table is made too."""
    from deltalake import DeltaTable

    lake = Lake(tmp_path)
    frame = pl.DataFrame({
        "u": pl.Series([1, 2], dtype=pl.UInt8), "n": [None, None], "s": ["a", "ü"],
        "c": pl.Series(["x", "y"], dtype=pl.Categorical),
        "t": [datetime(2024, 1, 1, tzinfo=UTC), None],
    })
    ref = lake.append("raw/new", frame, metadata={"loopml.ingest_id": "i-1"})
    assert ref.version == 0 and DeltaTable(lake.path("raw/new")).version() == 0
    commit = lake.history("raw/new")[0]
    assert commit["loopml.ingest_id"] == "i-1"
    assert commit["operationMetrics"]["num_added_rows"] == 2
    got = pl.read_delta(lake.path("raw/new"))
    assert got.schema == {"u": pl.Int32, "n": pl.String, "s": pl.String, "c": pl.String,
                          "t": pl.Datetime("us", "UTC")}
    assert got["s"].to_list() == ["a", "ü"] and got["u"].to_list() == [1, 2]
    assert lake.as_read("raw/new", frame, version=0) is not None
    lake.append("raw/parts", frame.select("s", "u"), partition_by=["s"])
    assert lake.partition_columns("raw/parts") == ["s"] and lake.read("raw/parts").height == 2


def test_commit_with_finds_the_commit_holding_a_metadata_value(tmp_path: Path) -> None:
    """``commit_with`` finds the newest commit after a version whose metadata holds a value;
    a missing table holds none."""
    lake = Lake(tmp_path)
    assert lake.commit_with("raw/t", "loopml.batch_id", "a") is None
    for batch_id in ("a", "b", "a"):
        lake.append("raw/t", pl.DataFrame({"x": [1]}), metadata={"loopml.batch_id": batch_id})
    assert lake.commit_with("raw/t", "loopml.batch_id", "a") == 2
    assert lake.commit_with("raw/t", "loopml.batch_id", "b", since=0) == 1
    assert lake.commit_with("raw/t", "loopml.batch_id", "b", since=1) is None
    assert lake.commit_with("raw/t", "loopml.batch_id", "c") is None


def test_a_failed_commit_may_have_landed_but_a_failed_open_has_not(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """A failure of the commit itself is a LakeCommitUnknownError (it may have landed); a
    failure before it, with nothing committed, is a plain LakeError."""
    from deltalake import DeltaTable

    from loopml.core.errors import LakeCommitUnknownError

    lake = Lake(tmp_path / "lake")
    lake.append("predictions/m", pl.DataFrame({"x": [1]}))

    def broken(self, *args, **kwargs):
        raise OSError("No such file or directory (os error 2)")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", broken)
    with pytest.raises(LakeCommitUnknownError):
        lake.append("predictions/m", pl.DataFrame({"x": [2]}))
    monkeypatch.undo()
    (tmp_path / "lake" / "clean").write_text("not a folder")
    with pytest.raises(LakeError) as failed:
        lake.append("clean/m", pl.DataFrame({"x": [1]}))
    assert not isinstance(failed.value, LakeCommitUnknownError)
