"""Time travel by version and by time, and schema evolution on append."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import LakeConflictError, LakeError
from loopml.lake import Lake


def _stamps(lake: Lake, table: str) -> dict[int, datetime]:
    return {c["version"]: datetime.fromtimestamp(c["timestamp"] / 1000, tz=UTC)
            for c in lake.history(table)}


@pytest.fixture
def three_versions(tmp_path: Path) -> Lake:
    """raw/t at versions 0, 1, 2 holding 1, 2 and 3 rows, committed in distinct milliseconds."""
    lake = Lake(tmp_path)
    for x in range(3):
        lake.append("raw/t", pl.DataFrame({"x": [x]}))
        time.sleep(0.01)
    return lake


def test_as_of_a_commit_time_reads_that_version(three_versions: Lake) -> None:
    """As of each commit's own time, the table is at that commit's version."""
    lake = three_versions
    for version, when in _stamps(lake, "raw/t").items():
        assert lake.version_at("raw/t", when) == version
        assert lake.read("raw/t", as_of=when).height == version + 1


def test_as_of_between_commits_reads_the_earlier_one(three_versions: Lake) -> None:
    """A time between two commits reads the older of them; ISO text works like a datetime."""
    lake = three_versions
    stamps = _stamps(lake, "raw/t")
    between = stamps[1] + (stamps[2] - stamps[1]) / 2
    assert lake.read("raw/t", as_of=between)["x"].sort().to_list() == [0, 1]
    assert lake.rows("raw/t", as_of=between.isoformat()) == 2
    naive_utc = between.replace(tzinfo=None).isoformat()  # no offset: UTC
    assert lake.scan("raw/t", as_of=naive_utc).collect().height == 2
    assert lake.read("raw/t", as_of=stamps[2] + timedelta(days=1)).height == 3


def test_as_of_before_the_first_version_is_a_clear_error(three_versions: Lake) -> None:
    """A time before the table existed names the first version's time instead of reading v0."""
    first = _stamps(three_versions, "raw/t")[0]
    with pytest.raises(LakeError, match="did not exist yet") as info:
        three_versions.read("raw/t", as_of=first - timedelta(seconds=1))
    assert "first version (0)" in info.value.message and info.value.hint


def test_as_of_rejects_text_that_is_no_time_and_both_selectors(three_versions: Lake) -> None:
    """Text that is not a time, or a version and a time together, are clear errors."""
    with pytest.raises(LakeError, match="is not a time"):
        three_versions.read("raw/t", as_of="yesterday")
    with pytest.raises(LakeError, match="not both"):
        three_versions.read("raw/t", version=0, as_of="2020-01-01")


def test_a_version_out_of_range_names_the_range(three_versions: Lake) -> None:
    """Asking for version 9 of a 3-version table says which versions exist."""
    with pytest.raises(LakeError, match="no version 9; versions run from 0 to 2"):
        three_versions.read("raw/t", version=9)


def test_a_new_column_merges_and_earlier_versions_keep_their_schema(tmp_path: Path) -> None:
    """Appending a batch with a new column extends the schema; version 0 reads without it."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1]}))
    lake.append("clean/t", pl.DataFrame({"x": [2], "y": ["b"]}))
    assert lake.read("clean/t").sort("x")["y"].to_list() == [None, "b"]
    assert lake.read("clean/t", version=0).columns == ["x"]


def test_a_type_conflict_is_a_lake_conflict_error(tmp_path: Path) -> None:
    """Text into an integer column is a LakeConflictError naming the table; nothing is written."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1]}))
    with pytest.raises(LakeConflictError, match="clean/t") as info:
        lake.append("clean/t", pl.DataFrame({"x": ["one"]}))
    assert info.value.hint
    assert lake.version("clean/t") == 0 and lake.read("clean/t")["x"].to_list() == [1]


def test_unknown_tables_are_listed_with_the_closest(tmp_path: Path) -> None:
    """An unknown table name lists the lake's tables; the SQL name also finds a table."""
    lake = Lake(tmp_path)
    lake.append("clean/flights", pl.DataFrame({"x": [1]}))
    assert lake.table("clean_flights") == "clean/flights"
    with pytest.raises(LakeError, match="Did you mean 'clean/flights'"):
        lake.table("clean/flight")
    with pytest.raises(LakeError, match="clean/flights"):
        lake.read("clean/fligts")
