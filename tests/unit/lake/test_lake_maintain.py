"""Partitioning, compaction and vacuum under a retention policy."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import LakeConflictError, LakeError
from loopml.lake import Lake


def _parquet_files(lake: Lake, table: str) -> list[Path]:
    return sorted(Path(lake.path(table)).rglob("*.parquet"))


def test_partition_by_on_the_first_write_lays_out_folders(tmp_path: Path) -> None:
    """A table created with partition_by has one folder per value and reads back whole."""
    lake = Lake(tmp_path)
    frame = pl.DataFrame({"origin": ["JFK", "LGA", "JFK"], "delay": [1, 2, 3]})
    lake.append("clean/f", frame, partition_by=["origin"])
    lake.append("clean/f", pl.DataFrame({"origin": ["EWR"], "delay": [4]}))  # keeps partitioning
    assert lake.partition_columns("clean/f") == ["origin"]
    folders = {p.parent.name for p in _parquet_files(lake, "clean/f")}
    assert folders == {"origin=JFK", "origin=LGA", "origin=EWR"}
    out = lake.read("clean/f").sort("delay")
    assert out["origin"].to_list() == ["JFK", "LGA", "JFK", "EWR"]


def test_merge_creates_and_keeps_the_partitioning(tmp_path: Path) -> None:
    """An upsert into a partitioned table replaces the row within its partition."""
    lake = Lake(tmp_path)
    lake.merge("clean/m", pl.DataFrame({"k": [1, 2], "p": ["a", "b"], "v": [1, 2]}),
               keys=["k"], partition_by=["p"])
    lake.merge("clean/m", pl.DataFrame({"k": [2], "p": ["b"], "v": [20]}), keys=["k"],
               partition_by=["p"])
    assert lake.partition_columns("clean/m") == ["p"]
    assert lake.read("clean/m").sort("k")["v"].to_list() == [1, 20]


def test_other_partitioning_than_the_table_has_is_a_conflict(tmp_path: Path) -> None:
    """Asking for other partition columns than the table's is a LakeError (not a conflict)."""
    lake = Lake(tmp_path)
    lake.append("clean/f", pl.DataFrame({"a": [1], "b": [2]}), partition_by=["a"])
    with pytest.raises(LakeError, match=r"partitioned by \['a'\], not \['b'\]") as info:
        lake.append("clean/f", pl.DataFrame({"a": [1], "b": [2]}), partition_by=["b"])
    assert not isinstance(info.value, LakeConflictError)
    with pytest.raises(LakeError, match="no such column"):
        lake.append("clean/g", pl.DataFrame({"a": [1]}), partition_by=["zzz"])
    assert lake.version("clean/f") == 0 and not lake.exists("clean/g")


def test_optimize_compacts_and_vacuums_with_counts(tmp_path: Path) -> None:
    """Five appends become one file with the same rows; vacuum at 0 h removes the five."""
    lake = Lake(tmp_path)
    for x in range(5):
        lake.append("raw/t", pl.DataFrame({"x": [x, x + 10]}))
    before = _parquet_files(lake, "raw/t")
    size = sum(p.stat().st_size for p in before)
    done = lake.optimize("raw/t", retention_hours=0)
    assert (done.files_removed, done.files_added, done.files_vacuumed) == (5, 1, 5)
    assert done.bytes_removed == size and done.bytes_vacuumed == size and done.bytes_added > 0
    assert (done.version_before, done.version) == (4, lake.version("raw/t"))
    assert len(_parquet_files(lake, "raw/t")) == 1
    assert sorted(lake.read("raw/t")["x"].to_list()) == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    with pytest.raises(LakeError, match="Reading raw/t failed") as info:
        lake.read("raw/t", version=2)  # its files are gone
    assert "retention" in (info.value.hint or "")


def test_optimize_keeps_the_files_younger_versions_need(tmp_path: Path) -> None:
    """Under the default 168 h retention, compaction removes no file, so time travel works."""
    lake = Lake(tmp_path)
    for x in range(3):
        lake.append("raw/t", pl.DataFrame({"x": [x]}))
    done = lake.optimize("raw/t")
    assert done.retention_hours == 168 and done.files_removed == 3 and done.files_vacuumed == 0
    assert len(_parquet_files(lake, "raw/t")) == 4
    assert lake.read("raw/t", version=1)["x"].sort().to_list() == [0, 1]
    again = lake.optimize("raw/t", retention_hours=0)  # one file already: nothing to compact
    assert (again.files_removed, again.files_added, again.files_vacuumed) == (0, 0, 3)


def test_optimize_keeps_a_partitioned_table_partitioned(tmp_path: Path) -> None:
    """Compaction works per partition: files stay in their partition folders."""
    lake = Lake(tmp_path)
    for x in range(4):
        lake.append("clean/p", pl.DataFrame({"p": ["a" if x % 2 else "b"], "x": [x]}),
                    partition_by=["p"])
    done = lake.optimize("clean/p", retention_hours=0)
    assert (done.files_removed, done.files_added) == (4, 2)
    assert {p.parent.name for p in _parquet_files(lake, "clean/p")} == {"p=a", "p=b"}
    assert lake.read("clean/p").sort("x")["p"].to_list() == ["b", "a", "b", "a"]


def test_optimize_rejects_a_negative_retention_and_an_unknown_table(tmp_path: Path) -> None:
    """A negative retention and a missing table are clear errors."""
    lake = Lake(tmp_path)
    lake.append("raw/t", pl.DataFrame({"x": [1]}))
    with pytest.raises(LakeError, match="zero or more hours"):
        lake.optimize("raw/t", retention_hours=-1)
    with pytest.raises(LakeError, match="raw/t"):
        lake.optimize("raw/u")
