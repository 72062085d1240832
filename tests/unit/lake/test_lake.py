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
